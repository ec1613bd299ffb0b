"""Sieve agreement with Pigeonhole: for every case of sieve_cases.py,
what postling does with the message (observed through the real server:
folders and flags in the Maildir, redirects and vacation replies in the
outbound queue, a rejection in the SMTP dialog) equals what Dovecot's
`sieve-test` says it would do. A script sievec refuses must be one
postling refuses (logged, the message kept)."""

import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Server
from sieve_cases import CASES, FROM

USER = "alice@example.test"
RCPT = "alice+mta-filters@example.test"
DATE = "Wed, 18 Feb 2009 20:30:00 -0500"

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/sieve-test").exists(), reason="dovecot-sieve is not installed")


def message(i, headers, body):
    given = {line.split(":", 1)[0].lower() for line in headers.splitlines() if ":" in line}
    head = headers
    defaults = [("from", f"Wile <{FROM}>"), ("to", f"Alice <{USER}>"),
                ("subject", "hello world"), ("date", DATE),
                ("message-id", f"<case{i}.{time.time_ns()}@desert.example.org>")]
    for name, value in defaults:
        if name not in given:
            head += f"{name.title()}: {value}\n"
    return head + "\n" + body


def pigeonhole(work: Path, script: str, msg: str, sender: str):
    """sieve-test's verdict: a set of outcomes, or {"invalid"}."""
    (work / "s.sieve").write_text(script)
    (work / "m.eml").write_text(msg)
    for f in work.iterdir():
        os.chmod(f, 0o666)
    r = subprocess.run(
        ["sieve-test", "-c", str(work / "dovecot.conf"), "-f", sender or "<>",
         "-r", RCPT, "-a", RCPT, str(work / "s.sieve"), str(work / "m.eml")],
        capture_output=True, text=True, timeout=30)
    if "failed to compile" in r.stderr or "validation failed" in r.stderr:
        return {("invalid",)}
    assert r.returncode == 0, r.stderr
    vacation = vacation_sent(work, sender)
    out = set()
    store = None
    for line in r.stdout.splitlines():
        m = re.match(r"\s*\* store message in folder: (.*)", line)
        if m:
            # INBOX has no case, as a folder and as a parent (RFC 9051).
            folder = re.sub(r"^inbox(?=\.|$)", "INBOX", m.group(1), flags=re.I)
            store = [folder, set()]
            out.add(("store", store[0]))
            continue
        m = re.match(r"\s*\+ add IMAP flags: (.*)", line)
        if m and store:
            flags = frozenset(f.lower() for f in m.group(1).split())
            out.discard(("store", store[0]))
            out.add(("store", store[0], flags))
            continue
        m = re.match(r"\s*\* redirect message to: <?([^>]*)>?", line)
        if m:
            out.add(("redirect", m.group(1).lower()))
        if re.match(r"\s*\* send vacation message", line) and vacation:
            out.add(("vacation",))
        if re.match(r"\s*\* reject message", line):
            out.add(("reject",))
    return out


def vacation_sent(work: Path, sender: str) -> bool:
    """Whether Pigeonhole, executing the script (-e), sends the vacation
    reply: the dry run lists it whatever its rules would decide."""
    r = subprocess.run(
        ["sieve-test", "-e", "-c", str(work / "dovecot.conf"), "-f", sender,
         "-r", RCPT, "-a", RCPT, str(work / "s.sieve"), str(work / "m.eml")],
        capture_output=True, text=True, timeout=30)
    return "sent vacation response" in r.stderr


def snapshot(server: Server):
    """Every stored file's name, by folder, and the queue's files."""
    root = server.mailbox_path("alice")
    files = {}
    for d in [root] + [p for p in root.iterdir() if p.name.startswith(".") and p.is_dir()]:
        folder = "INBOX" if d == root else d.name[1:]
        for sub in ("new", "cur"):
            if (d / sub).is_dir():
                for f in (d / sub).iterdir():
                    files[f.name.split(":")[0]] = (folder, f.name)
    queue = server.dir / "data/queue/new"
    queued = {p.name: p for p in queue.iterdir()} if queue.exists() else {}
    return files, queued


LETTERS = {"S": "\\seen", "R": "\\answered", "F": "\\flagged", "T": "\\deleted", "D": "\\draft"}


def observed(server: Server, before, after, rejected: bool):
    out = set()
    if rejected:
        out.add(("reject",))
    files, queued = after
    keywords = {}
    for name, (folder, full) in files.items():
        if name in before[0]:
            continue
        info = full.split(":2,")[1] if ":2," in full else ""
        flags = set()
        for c in info:
            if c in LETTERS:
                flags.add(LETTERS[c])
            elif c.islower():
                d = server.mailbox_path("alice") / ("" if folder == "INBOX" else "." + folder)
                if folder not in keywords:
                    kw = d / "dovecot-keywords"
                    keywords[folder] = dict(
                        line.split(" ", 1) for line in kw.read_text().splitlines()) if kw.exists() else {}
                flags.add(keywords[folder].get(str(ord(c) - ord("a")), c).lower())
        out.add(("store", folder, frozenset(flags)) if flags else ("store", folder))
    for name, path in queued.items():
        if name in before[1]:
            continue
        text = path.read_text(errors="replace")
        head, _, msg = text.partition("\n\n")
        rcpts = re.findall(r"^to <([^>]*)>", head, re.M)
        if "X-Sieve-Redirected-From:" in msg:
            out.update(("redirect", r.lower()) for r in rcpts)
        elif "Auto-Submitted: auto-replied" in msg:
            out.add(("vacation",))
        elif "Content-Type: multipart/report" in msg:
            out.add(("reject",))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sieve")
    # sieve-test reads as nobody: a folder of its own, outside pytest's
    # private ones.
    work = Path(tempfile.mkdtemp(prefix="postling-pigeonhole-"))
    (work / "mail").mkdir()
    os.chmod(work, 0o777)
    os.chmod(work / "mail", 0o777)
    (work / "dovecot.conf").write_text(
        f"mail_location = maildir:{work}/mail\nmail_uid = nobody\nmail_gid = nogroup\n"
        "plugin {\n  sieve_extensions = +vacation-seconds +spamtest +spamtestplus\n"
        "  recipient_delimiter = +\n"
        # postling knows the user's own address besides the recipient's.
        f"  sieve_user_email = {USER}\n"
        # spamtest reads a header none of these messages has: untested.
        "  sieve_spamtest_status_type = score\n"
        "  sieve_spamtest_status_header = X-Postling-Untested: (.*)\n"
        "  sieve_spamtest_max_value = 1\n}\n")
    (tmp / "srv").mkdir()
    server = Server(tmp / "srv", "maildir", extra="queue_retry = 1h")
    yield server, work
    server.stop()
    shutil.rmtree(work)


def deliver(server: Server, script: str, msg: str, sender: str):
    root = server.mailbox_path("alice")
    sieve = root / "sieve"
    sieve.mkdir(parents=True, exist_ok=True)
    (sieve / "case.sieve.tmp").write_text(script)
    os.replace(sieve / "case.sieve.tmp", sieve / "case.sieve")
    link = root / ".dovecot.sieve"
    if not link.is_symlink():
        link.symlink_to("sieve/case.sieve")
    before = snapshot(server)
    server.mark = len(server.log)
    rejected = False
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        try:
            s.sendmail(sender, [RCPT], msg.replace("\n", "\r\n").encode())
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 550, e
            rejected = True
    return observed(server, before, snapshot(server), rejected)


def resolved_cases():
    by_name = {c[0]: c for c in CASES}
    out = []
    for name, script, headers, body, sender in CASES:
        if script is None:
            script, sender = by_name[sender][1], None
        # Each case its own sender: what one case's vacation reply
        # remembers must not stop another's.
        own = FROM.replace("@", f"+{len(out)}@")
        out.append((name, script, headers, body, own if sender is None else sender))
    return out


def test_table_is_big_enough():
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", resolved_cases(), ids=lambda c: c[0])
def test_postling_does_what_pigeonhole_says(world, case):
    server, work = world
    i = CASES.index(next(c for c in CASES if c[0] == case[0]))
    name, script, headers, body, sender = case
    msg = message(i, headers, body)
    want = pigeonhole(work, script, msg, sender)
    got = deliver(server, script, msg, sender)
    if want == {("invalid",)}:
        end = time.monotonic() + 5
        while time.monotonic() < end and not any(
                "case.sieve: line" in l for l in server.log[server.mark:]):
            time.sleep(0.05)
        # Kept in INBOX as if there were no script.
        assert got == {("store", "INBOX")}, (name, got)
        # This delivery's own log line, not an earlier case's.
        assert any("case.sieve: line" in l for l in server.log[server.mark:]), name
        return
    assert got == want, (name, script)
