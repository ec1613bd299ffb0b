"""`postling status` over the local socket: the running server's figures
as text and as JSON (read by Python's json), counting what the test did:
a message received and delivered, a refused login, an open connection,
the queue, the certificate's expiry. XSTATUS is refused over TCP."""

import imaplib
import json
import smtplib
import subprocess

import pytest

from conftest import BINARY, Server, add_user, make_cert


@pytest.fixture
def srv(tmp_path):
    cert, key = make_cert(tmp_path)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", "alice pw")
    s = Server(tmp_path, "maildir", users=(tmp_path / "users").read_text(), aliases="", extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_imap = 127.0.0.1:0
    """)
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def status(srv, *args):
    out = subprocess.run([BINARY, "status", "-c", str(srv.conf), *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_status_counts_what_happened(srv):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("someone@elsewhere.test", ["alice@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    imap = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@example.test", "wrong")
    # The refusal is answered after a delay; the connection stays open.
    figures = json.loads(status(srv, "--json"))
    assert figures["events"]["received"]["total"] == 1
    assert figures["events"]["received"]["last_hour"] == 1
    assert figures["events"]["delivered"]["last_day"] == 1
    assert figures["events"]["login_failures"]["total"] == 1
    assert figures["connections"]["IMAP"] == 1
    assert figures["queue"] == {"messages": 0, "oldest_seconds": None}
    assert figures["memory_bytes"] > 0
    assert figures["uptime_seconds"] >= 0
    # make_cert's certificate is good for two days.
    assert 86_400 < figures["certificate_expires_in_seconds"] <= 2 * 86_400
    assert set(figures["helper_queues"]) >= {"durable", "reader", "login", "queue", "spool"}
    imap.logout()

    text = status(srv)
    assert text.startswith("uptime: ")
    assert "queue: empty" in text
    received = next(line for line in text.splitlines() if line.startswith("received"))
    assert received.split()[1:] == ["1", "1", "1"]
    assert "certificate: expires in 1d" in text


def test_xstatus_is_for_the_local_socket(srv):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        code, text = c.docmd("XSTATUS")
        assert code == 502, text


def test_status_without_a_server(tmp_path):
    conf = tmp_path / "postling.conf"
    conf.write_text(f"domains = example.test\ndata_dir = {tmp_path}/data\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    out = subprocess.run([BINARY, "status", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "not running" in out.stderr
