"""The daily report (daily_report = on): soon after the first start the
postmaster gets every doctor line; a restart within the day sends none;
a day later only the lines that changed are reported, with the queue,
the blocklists and the last day's figures."""

import os
import time

from conftest import Server

EXTRA = """
    daily_report = on
    hostname = mx.example.test
"""
ALIASES = "postmaster@example.test: alice@example.test\n"


def reports(srv):
    """The reports delivered, oldest first (by their Message-ID's time)."""
    got = [m for m in srv.messages("alice") if m["Subject"] == "Daily report for mx.example.test"]
    return sorted(got, key=lambda m: int(m["Message-ID"].split(".")[1].split("@")[0]))


def wait_reports(srv, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = reports(srv)
        if len(got) >= n:
            return got
        time.sleep(0.2)
    return reports(srv)


def test_first_report_then_changes_only(tmp_path):
    srv = Server(tmp_path, extra=EXTRA, aliases=ALIASES)
    try:
        [first] = wait_reports(srv, 1)
        body = first.get_payload(decode=True).decode()
        assert first["Auto-Submitted"] == "auto-generated"
        assert "The first report" in body
        assert "fail MX example.test" in body  # no DNS here: every record is missing
        assert "ok   open relay: mail for other domains refused" in body
        assert "The last 24 hours:" in body and "received" in body
    finally:
        srv.stop()
    kept = tmp_path / "data/report/doctor.lines"
    assert kept.exists()
    # A restart within the day: no second report.
    srv = Server(tmp_path, extra=EXTRA, aliases=ALIASES)
    try:
        time.sleep(8)
        assert len(reports(srv)) == 1
    finally:
        srv.stop()
    # A day on, with one line different from what the last report said.
    lines = kept.read_text().splitlines()
    changed = [l.replace("fail MX example.test", "ok   MX example.test") if l.startswith("fail MX") else l
               for l in lines]
    kept.write_text("\n".join(changed) + "\n")
    old = time.time() - 2 * 86_400
    os.utime(kept, (old, old))
    srv = Server(tmp_path, extra=EXTRA, aliases=ALIASES)
    try:
        got = wait_reports(srv, 2)
        assert len(got) == 2
        body = got[1].get_payload(decode=True).decode()
        assert "Changed since the last report:" in body
        assert "now:  fail MX example.test" in body
        assert "was:  ok   MX example.test" in body
        # Lines that did not change are not repeated.
        assert "now:  ok   queue" not in body
        assert "Queue and blocklists:" in body
    finally:
        srv.stop()
