"""Real IMAP clients against the real binary: imaplib over STARTTLS and
IMAPS, mbsync (isync) two-way sync, mutt over imaps://, curl imap:// and
imaps://, fetchmail with IDLE, offlineimap; plus kill -9 in the middle
of APPEND, MOVE and EXPUNGE."""

import imaplib
import mailbox
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Server, add_user, make_cert

PASSWORD = "imap pw 1"
USER = "alice@example.test"


def start(tmp_path, fmt="maildir"):
    cert, key = make_cert(tmp_path)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("bob@example.test\n")
    add_user(conf, USER, PASSWORD)
    s = Server(tmp_path, fmt, users=(tmp_path / "users").read_text(), extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_imap = 127.0.0.1:0
        listen_imaps = 127.0.0.1:0
    """)
    s.cert = cert
    return s


@pytest.fixture
def server(tmp_path):
    s = start(tmp_path)
    yield s
    s.stop()


def deliver(server, subject, body="hello"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.sendmail("carol@remote.test", [USER],
                   f"From: carol@remote.test\r\nTo: {USER}\r\n"
                   f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
                   f"Subject: {subject}\r\n\r\n{body}\r\n")


def tls_context(server):
    ctx = ssl.create_default_context(cafile=str(server.cert))
    return ctx


def imaps(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["IMAPS"],
                          ssl_context=tls_context(server), timeout=30)
    m.login(USER, PASSWORD)
    return m


def test_starttls_and_imaps(server):
    deliver(server, "over tls")
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=tls_context(server))
    assert "STARTTLS" not in m.capabilities
    m.login(USER, PASSWORD)
    assert m.select("INBOX") == ("OK", [b"1"])
    m.logout()
    m = imaps(server)
    typ, data = m.select("INBOX")
    typ, data = m.fetch("1", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert data[0][1] == b"Subject: over tls\r\n\r\n"
    m.logout()


def mbsync(tmp_path, server, *args):
    local = tmp_path / "local"
    local.mkdir(exist_ok=True)
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount acct
Host localhost
Port {server.ports['IMAPS']}
User {USER}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {server.cert}

IMAPStore remote
Account acct

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    out = subprocess.run(["mbsync", "-c", str(rc), *args, "ch"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    return local, out.stdout + out.stderr


def local_state(local: Path):
    """Every local message: (folder, subject, flags)."""
    found = []
    for folder in sorted(p for p in local.iterdir() if p.is_dir()):
        box = mailbox.Maildir(str(folder), factory=None, create=False)
        for key in box.keys():
            msg = box.get_message(key)
            found.append((folder.name, msg["Subject"], msg.get_flags()))
    return sorted(found)


def test_mbsync_two_way(server, tmp_path):
    deliver(server, "one")
    deliver(server, "two")
    local, _ = mbsync(tmp_path, server)
    state = local_state(local)
    assert [(f, s) for f, s, _ in state if f == "INBOX"] == [("INBOX", "one"), ("INBOX", "two")]
    # The default folders came along.
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= {p.name for p in local.iterdir()}
    # Local changes: "one" read and flagged, a draft written locally.
    inbox = mailbox.Maildir(str(local / "INBOX"), factory=None, create=False)
    for key in inbox.keys():
        msg = inbox.get_message(key)
        if msg["Subject"] == "one":
            msg.set_flags("FS")
            msg.set_subdir("cur")
            inbox[key] = msg
    drafts = mailbox.Maildir(str(local / "Drafts"), factory=None, create=False)
    drafts.add(mailbox.MaildirMessage(b"Subject: local draft\n\nwip\n"))
    # Remote changes: "two" deleted on the server.
    m = imaps(server)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "two")
    m.store(data[0].decode(), "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    mbsync(tmp_path, server)
    state = local_state(local)
    assert [(f, s, fl) for f, s, fl in state if f in ("INBOX", "Drafts")] == [
        ("Drafts", "local draft", ""), ("INBOX", "one", "FS")]
    m = imaps(server)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len([d for d in data if isinstance(d, tuple)]) == 1
    assert b"\\Seen" in data[0][0] and b"\\Flagged" in data[0][0]
    m.select("Drafts")
    typ, data = m.fetch("1", "BODY.PEEK[TEXT]")
    assert data[0][1] == b"wip\r\n"
    m.logout()
    # A second run has nothing to do.
    before = local_state(local)
    _, out = mbsync(tmp_path, server, "-V")
    assert local_state(local) == before
    assert not re.search(r"(?i)(propagating|expunging|creating).*[1-9]", out) or \
        re.search(r"far side: \+0 \*0 #0 -0", out), out


def test_mutt_reads_over_imaps(server, tmp_path):
    deliver(server, "first")
    deliver(server, "second")
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f"set ssl_ca_certificates_file={server.cert}\n"
        f"set imap_user={USER}\nset imap_pass=\"{PASSWORD}\"\n"
        "set mbox_type=mbox\nset confirmcreate=no\nset confirmappend=no\n"
        "set delete=no\nset move=no\nset quit=yes\nset sort=date-received\n"
        f"set folder={tmp_path}\nset certificate_file={tmp_path}/certs\n")
    copy = tmp_path / "copy.mbox"
    keys = f"<tag-pattern>~A<enter><tag-prefix><copy-message>{copy}<enter><quit>"
    url = f"imaps://127.0.0.1:{server.ports['IMAPS']}/INBOX"
    mutt = f"mutt -n -F {muttrc} -f {url} -e 'push \"{keys}\"'"
    out = subprocess.run(["script", "-qec", mutt, "/dev/null"],
                         capture_output=True, timeout=60,
                         env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                              "HOME": str(tmp_path)})
    screen = out.stdout.decode(errors="replace")
    assert out.returncode == 0, screen
    copied = list(mailbox.mbox(str(copy)))
    assert sorted(m["Subject"] for m in copied) == ["first", "second"], screen
    assert all(m.get_payload() == "hello\n" for m in copied)


def test_curl_imap_and_imaps(server, tmp_path):
    deliver(server, "curl me", "body for curl")
    auth = f"{USER}:{PASSWORD}"
    out = subprocess.run(
        ["curl", "-s", "--user", auth,
         f"imap://127.0.0.1:{server.ports['IMAP']}/INBOX;UID=1"],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out
    assert out.stdout.endswith(b"Subject: curl me\r\n\r\nbody for curl\r\n")
    out = subprocess.run(
        ["curl", "-s", "--user", auth, "--cacert", str(server.cert),
         f"imaps://localhost:{server.ports['IMAPS']}/", "-X", "LIST \"\" *"],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out
    assert b"\\Sent" in out.stdout and b"INBOX" in out.stdout


def test_fetchmail_with_idle(server, tmp_path):
    out = tmp_path / "fetched"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f"#!/bin/sh\ncat > \"$(mktemp {out}/msg.XXXXXX)\"\n")
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 service {server.ports['IMAPS']} protocol IMAP auth password\n"
        f"  user \"{USER}\" there with password \"{PASSWORD}\" is root here\n"
        f"  ssl sslcertck sslcertfile \"{server.cert}\" sslcommonname localhost\n"
        f"  keep idle mda \"{mda}\"\n")
    rc.chmod(0o600)
    deliver(server, "before idle")
    proc = subprocess.Popen(["fetchmail", "-v", "-f", str(rc), "-N", "--nosyslog",
                             "-d", "300"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "HOME": str(tmp_path)})
    try:
        def wait_for(n):
            for _ in range(300):
                if len(list(out.iterdir())) >= n:
                    return True
                time.sleep(0.1)
            return False
        if not wait_for(1):
            proc.kill()
            raise AssertionError(proc.communicate()[0].decode(errors="replace"))
        time.sleep(1)  # fetchmail is IDLE now
        deliver(server, "during idle")
        assert wait_for(2), "IDLE did not bring the new message"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    subjects = sorted(re.search(rb"Subject: (.*)\r?\n", p.read_bytes()).group(1)
                      for p in out.iterdir())
    assert subjects == [b"before idle", b"during idle"]


def test_offlineimap_one_sync(server, tmp_path):
    deliver(server, "offline")
    local = tmp_path / "offline"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""
[general]
accounts = a
metadata = {tmp_path}/offlineimap-meta

[Account a]
localrepository = l
remoterepository = r

[Repository l]
type = Maildir
localfolders = {local}

[Repository r]
type = IMAP
remotehost = localhost
remoteport = {server.ports['IMAPS']}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {server.cert}
""")
    out = subprocess.run(["offlineimap", "-o", "-u", "basic", "-c", str(rc)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    box = mailbox.Maildir(str(local / "INBOX"), factory=None, create=False)
    assert [box.get_message(k)["Subject"] for k in box.keys()] == ["offline"]
    assert (local / "Sent").is_dir()


def count_files(folder: Path):
    return sum(1 for sub in ("cur", "new") for _ in (folder / sub).iterdir())


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
@pytest.mark.parametrize("what", ["append", "move", "expunge"])
def test_kill_9_loses_and_duplicates_nothing(tmp_path, what, fmt):
    """SIGKILL while APPEND, MOVE or EXPUNGE runs: after a restart every
    message is there exactly once (or, for EXPUNGE, gone or there, never
    twice), and UIDs are not reused."""
    s = start(tmp_path, fmt)
    try:
        for i in range(20):
            deliver(s, f"m{i}")
        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=30)
        m.login(USER, PASSWORD)
        m.select("INBOX")
        sock = m.socket()
        if what == "append":
            body = b"Subject: appended\r\n\r\n" + b"x" * 200_000 + b"\r\n"
            sock.sendall(b"a1 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        elif what == "move":
            sock.sendall(b"a1 MOVE 1:* Archive\r\n")
        else:
            sock.sendall(b"a1 STORE 1:* +FLAGS.SILENT (\\Deleted)\r\na2 EXPUNGE\r\n")
        time.sleep(0.05)
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
        sock.close()
    finally:
        s.stop()
    # The same data folder, a fresh server.
    s = start(tmp_path, fmt)
    try:
        inbox = s.mailbox_path("alice")
        archive = inbox / ".Archive"
        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=30)
        m.login(USER, PASSWORD)
        subjects = []
        uids = {}
        for box in ("INBOX", "Archive"):
            typ, data = m.select(box)
            n = int(data[0])
            if n:
                typ, data = m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                for d in data:
                    if isinstance(d, tuple):
                        subjects.append(d[1].split(b": ", 1)[1].strip().decode())
                        uid = int(re.search(rb"UID (\d+)", d[0]).group(1))
                        assert uid not in uids.get(box, set())
                        uids.setdefault(box, set()).add(uid)
        m.logout()
        originals = [f"m{i}" for i in range(20)]
        if what == "expunge":
            assert len(subjects) == len(set(subjects))
            assert set(subjects) <= set(originals)
        else:
            expected = originals + (["appended"] if what == "append" else [])
            # Each original exactly once; an APPEND cut short may be absent.
            assert sorted(x for x in subjects if x != "appended") == sorted(originals)
            assert subjects.count("appended") <= 1
            assert set(subjects) <= set(expected)
        if fmt == "maildir":
            assert count_files(inbox) + (count_files(archive) if archive.exists() else 0) \
                == len(subjects)
    finally:
        s.stop()
