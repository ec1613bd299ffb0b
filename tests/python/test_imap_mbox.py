"""IMAP on mbox mailboxes: the same dialogs as on Maildir, UIDs and
flags kept in the sidecar across restarts, and mutt or procmail changing
the file behind our back (mail appended, a message deleted, flags set):
seen within seconds, nothing lost, no UID given twice."""

import imaplib
import os
import re
import signal
import smtplib
import time

import pytest

from conftest import Server, users_with_password

PASSWORD = "mbox-imap-1"


def start(tmp_path):
    users = users_with_password(tmp_path, PASSWORD)
    return Server(tmp_path, "mbox", users=users,
                  extra="listen_imap = 127.0.0.1:0")


@pytest.fixture
def server(tmp_path):
    s = start(tmp_path)
    yield s
    s.stop()


def deliver(server, subject, body="hello"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.sendmail("carol@remote.test", ["alice@example.test"],
                   f"From: carol@remote.test\r\nSubject: {subject}\r\n\r\n{body}\r\nFrom here\r\n")


def login(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    m.login("alice@example.test", PASSWORD)
    return m


def subjects(m):
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return [(int(re.search(rb"UID (\d+)", d[0]).group(1)),
             d[1].split(b": ", 1)[1].strip().decode())
            for d in data if isinstance(d, tuple)]


def test_dialogs_on_mbox(server):
    deliver(server, "one")
    deliver(server, "two")
    m = login(server)
    typ, data = m.select("INBOX")
    assert data == [b"2"]
    assert subjects(m) == [(1, "one"), (2, "two")]
    typ, data = m.fetch("1", "BODY.PEEK[TEXT]")
    # mboxrd quoting is undone for the reader.
    assert data[0][1] == b"hello\r\nFrom here\r\n"
    m.store("1", "+FLAGS", "(\\Flagged $Later)")
    typ, data = m.search(None, "FLAGGED")
    assert data == [b"1"]
    typ, data = m.search(None, "BODY", "hello")
    assert data == [b"1 2"]
    assert m.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nwip\r\n")[0] == "OK"
    assert m.copy("2", "Archive")[0] == "OK"
    assert m.uid("MOVE", "1", "Trash")[0] == "OK"
    assert subjects(m) == [(2, "two")]
    m.select("Trash")
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"$Later" in data[0]
    m.select("Drafts")
    assert subjects(m) == [(1, "draft")]
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    assert subjects(m) == []
    m.logout()
    folders = server.mailbox_path("alice").parent / "folders"
    assert (folders / "Archive").read_bytes().startswith(b"From ")
    assert b"Subject: two" in (folders / "Archive").read_bytes()


def test_uids_and_flags_survive_a_restart(tmp_path):
    s = start(tmp_path)
    try:
        deliver(s, "kept")
        m = login(s)
        m.select("INBOX")
        m.store("1", "+FLAGS", "\\Answered")
        typ, data = m.status("INBOX", "(UIDVALIDITY)")
        validity = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
        m.logout()
    finally:
        s.stop()
    s = start(tmp_path)
    try:
        m = login(s)
        typ, data = m.status("INBOX", "(UIDVALIDITY UIDNEXT)")
        assert validity in data[0] and b"UIDNEXT 2" in data[0]
        m.select("INBOX")
        typ, data = m.fetch("1", "(UID FLAGS)")
        assert b"UID 1" in data[0] and b"\\Answered" in data[0]
        m.logout()
    finally:
        s.stop()


def test_mutt_and_procmail_behind_our_back(server):
    deliver(server, "one")
    deliver(server, "two")
    m = login(server)
    m.select("INBOX")
    assert subjects(m) == [(1, "one"), (2, "two")]
    inbox = server.mailbox_path("alice")
    text = inbox.read_text()
    # mutt marks "two" read, deletes "one"; procmail appends "three".
    blocks = re.split(r"(?m)^(?=From )", text)
    kept = [b for b in blocks if b and "Subject: one" not in b]
    kept = [b.replace("Subject: two\n", "Subject: two\nStatus: RO\n") for b in kept]
    kept.append("From x@y Thu Jan  1 00:00:00 1970\nSubject: three\n\nnew\n\n")
    inbox.write_text("".join(kept))
    for _ in range(100):
        m.noop()
        if subjects(m) == [(2, "two"), (3, "three")]:
            break
        time.sleep(0.1)
    assert subjects(m) == [(2, "two"), (3, "three")]
    typ, data = m.fetch("1", "FLAGS")
    assert b"\\Seen" in data[0]
    # New mail from us gets the next UID: none is ever given twice.
    deliver(server, "four")
    for _ in range(50):
        m.noop()
        if subjects(m)[-1] == (4, "four"):
            break
        time.sleep(0.05)
    assert subjects(m)[-1] == (4, "four")
    m.logout()


def test_kill_9_during_expunge_loses_nothing(tmp_path):
    s = start(tmp_path)
    try:
        for i in range(30):
            deliver(s, f"m{i}", ("x" * 70 + "\r\n") * 300)
        m = login(s)
        m.select("INBOX")
        sock = m.socket()
        sock.sendall(b"a1 STORE 1:10 +FLAGS.SILENT (\\Deleted)\r\na2 EXPUNGE\r\n")
        time.sleep(0.05)
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
        sock.close()
    finally:
        s.stop()
    s = start(tmp_path)
    try:
        m = login(s)
        m.select("INBOX")
        got = subjects(m)
        names = [x for _, x in got]
        # Either before the rewrite or after it: never half, never twice.
        assert names in ([f"m{i}" for i in range(30)], [f"m{i}" for i in range(10, 30)]), names
        assert len({u for u, _ in got}) == len(got)
        m.logout()
    finally:
        s.stop()


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_pop3_and_imap_on_one_mailbox(tmp_path, fmt):
    """A POP3 session deletes what an IDLE IMAP session shows: the IMAP
    session is told at once, and what POP3 marked read shows as \\Seen."""
    import poplib
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, fmt, users=users,
               extra="listen_imap = 127.0.0.1:0\nlisten_pop3 = 127.0.0.1:0")
    try:
        for n in ("one", "two", "three"):
            deliver(s, n)
        m = login(s)
        m.select("INBOX")
        assert [x for _, x in subjects(m)] == ["one", "two", "three"]
        sock = m.socket()
        f = sock.makefile("rb")
        sock.sendall(b"i1 IDLE\r\n")
        assert f.readline().startswith(b"+")
        p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
        p.user("alice@example.test")
        p.pass_(PASSWORD)
        p.retr(3)
        p.dele(1)
        p.quit()
        sock.settimeout(20)
        assert f.readline() == b"* 1 EXPUNGE\r\n"
        sock.sendall(b"DONE\r\n")
        line = f.readline()
        while line.startswith(b"*"):
            line = f.readline()
        assert line.startswith(b"i1 OK")
        if fmt == "maildir":
            # POP3 marks what it sent as seen (in the file name).
            for _ in range(50):
                typ, data = m.fetch("2", "FLAGS")
                if b"\\Seen" in data[0]:
                    break
                m.noop()
                time.sleep(0.1)
            assert b"\\Seen" in data[0]
        assert [x for _, x in subjects(m)] == ["two", "three"]
        m.logout()
    finally:
        s.stop()


def test_large_mbox_message_streams_exactly(server):
    lines = []
    for i in range(150_000):
        lines.append(b"From the line %06d\r\n" % i if i % 5000 == 0 else
                     b">From quoted %06d\r\n" % i if i % 7000 == 0 else
                     b"text %07d " % i + b"z" * (i % 61) + b"\r\n")
    body = b"".join(lines)
    msg = b"From: a@x\r\nSubject: big mbox\r\n\r\n" + body
    with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as s:
        s.sendmail("a@x.test", ["alice@example.test"], msg)
    m = login(server)
    m.select("INBOX")
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
    assert size == len(data[0][1])
    assert data[0][1].endswith(msg)
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<3000000.100000>)")
    assert data[0][1] == body[3_000_000:3_100_000]
    m.logout()


def test_folder_names_cannot_share_a_file_with_a_lock(server):
    """mbox folder X's dotlock is folders/X.lock: a folder of that name
    (or under it) would be deleted as a stale lock, mail and all. Such
    names get NO [CANNOT]; a dotlock on disk is never listed or opened
    as a folder."""
    m = login(server)
    assert m.create("Work")[0] == "OK"
    for name in ("Work.lock", "Work.LOCK", "Other.lock.deeper"):
        typ, data = m.create(name)
        assert typ == "NO" and b"[CANNOT]" in data[0], (name, data)
    typ, data = m.rename("Work", "Play.lock")
    assert typ == "NO" and b"[CANNOT]" in data[0], data
    # "lock" as a first level is its own file, no one's dotlock.
    assert m.create("lock")[0] == "OK"
    lock = server.dir / "data/mail/example.test/alice/folders/Work.lock"
    lock.write_text("12345\n")
    names = [l.decode() for l in m.list()[1]]
    assert not any("Work.lock" in n for n in names), names
    assert m.select("Work.lock")[0] == "NO"
    assert m.delete("Work.lock")[0] == "NO"
    assert lock.exists()
    m.logout()


def test_maildir_folder_names_stay_apart_from_its_files(tmp_path):
    """Maildir++ keeps every folder as a `.NAME` directory: names that
    mean files in the root (cur, new, tmp, X.lock) are folders of their
    own, and mail put in them stays there."""
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, "maildir", users=users, extra="listen_imap = 127.0.0.1:0")
    try:
        m = login(s)
        for name in ("cur", "new", "tmp", "Work", "Work.lock", "dovecot-uidlist"):
            assert m.create(name)[0] == "OK", name
        assert m.append("Work.lock", None, None, b"Subject: kept\r\n\r\nx\r\n")[0] == "OK"
        assert m.append("cur", None, None, b"Subject: kept\r\n\r\nx\r\n")[0] == "OK"
        assert m.select("Work")[1] == [b"0"]
        assert m.select("Work.lock")[1] == [b"1"]
        assert m.select("INBOX")[1] == [b"0"]
        assert m.select("cur")[1] == [b"1"]
        m.logout()
    finally:
        s.stop()
