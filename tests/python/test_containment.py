"""Containment (issue 15): a panic while serving one connection or one
helper job never stops the server. The binary is built with the
`fault-injection` feature; POSTLING_FAULT=PLACE:NEEDLE makes the code
at PLACE panic on data holding NEEDLE. Each test checks what the one
failure costs (a NO, a 451, a closed connection, a deferred attempt)
and that every other user goes on."""

import imaplib
import os
import poplib
import smtplib
import subprocess

import pytest

from conftest import BINARY, Server, users_with_password

PASSWORD = "contain-pw-1"


def start(tmp_path, monkeypatch, fault, fmt="maildir", extra=""):
    monkeypatch.setenv("POSTLING_FAULT", fault)
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, fmt, users=users, extra="listen_imap = 127.0.0.1:0\n"
               "listen_pop3 = 127.0.0.1:0\n" + extra)
    return s


def deliver(server, subject, extra_header="", sender="x@remote.test"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as c:
        c.sendmail(sender, ["alice@example.test"],
                   f"From: {sender}\r\nSubject: {subject}\r\n{extra_header}\r\nbody\r\n".encode())


def login(server) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    m.login("alice@example.test", PASSWORD)
    return m


@pytest.fixture
def stopped():
    started = []
    yield started.append
    for s in started:
        s.stop()
        assert s.proc.returncode == 0, "".join(s.log[-30:])


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_a_message_that_panics_twice_is_set_aside(tmp_path, monkeypatch, stopped, fmt):
    s = start(tmp_path, monkeypatch, "content:X-Boom", fmt)
    stopped(s)
    deliver(s, "fine")
    deliver(s, "bad", "X-Boom: 1\r\nReferences: <a@b>\r\n")
    deliver(s, "fine too")
    m = login(s)
    other = login(s)
    m.select("INBOX")
    # The first failure fails the command alone.
    typ, data = m.search(None, "SUBJECT", "fine")
    assert typ == "NO" and b"[SERVERBUG]" in data[0], (typ, data)
    assert other.noop()[0] == "OK"
    assert s.wait_logged("uid=2: processing failed")
    # The second sets the message aside: searches go on around it.
    assert m.search(None, "SUBJECT", "fine") == ("OK", [b"1 3"])
    assert s.wait_logged("uid=2: processing failed again")
    assert s.logged("message set aside")
    assert m.search(None, "SUBJECT", "bad") == ("OK", [b""])
    typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and sorted(data[0].split()) == [b"1", b"2", b"3"]
    typ, data = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    # Derived data as for an empty header; the octets as they are.
    typ, data = m.fetch("2", "(ENVELOPE BODY.PEEK[])")
    assert typ == "OK"
    whole = b"".join(b"".join(d) if isinstance(d, tuple) else d for d in data)
    assert b"ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" in whole, whole
    raw = next(d[1] for d in data if isinstance(d, tuple))
    assert b"X-Boom: 1" in raw and b"Subject: bad" in raw
    typ, data = m.fetch("1:3", "(BODYSTRUCTURE)")
    assert typ == "OK"
    m.logout()
    other.logout()
    # Still set aside after a restart.
    s.stop()
    s2 = Server(tmp_path, fmt, users=(tmp_path / "users").read_text(),
                extra="listen_imap = 127.0.0.1:0\nlisten_pop3 = 127.0.0.1:0")
    stopped(s2)
    m = login(s2)
    m.select("INBOX")
    assert m.search(None, "TEXT", "body") == ("OK", [b"1 3"])
    m.logout()


def test_a_command_that_panics_closes_only_its_connection(tmp_path, monkeypatch, stopped):
    s = start(tmp_path, monkeypatch, "command:PANIC-ME")
    stopped(s)
    deliver(s, "hello")
    calm = login(s)
    calm.select("INBOX")
    # IMAP: the session that met the fault gets BYE and is closed.
    bad = login(s)
    with pytest.raises(imaplib.IMAP4.abort) as e:
        bad.xatom("PANIC-ME")
    assert "SERVERBUG" in str(e.value) or "socket error: EOF" in str(e.value)
    assert s.wait_logged("service=IMAP: session: internal error")
    assert calm.noop()[0] == "OK"
    assert calm.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0] == "OK"
    # SMTP: 421 and closed; the next client is served.
    with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
        code, text = c.docmd("NOOP", "PANIC-ME")
        assert code == 421 and b"internal error" in text, (code, text)
        c.close()
    deliver(s, "after")
    # POP3 the same way.
    p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("NOOP PANIC-ME")
    p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 2
    p.quit()
    calm.select("INBOX")
    assert calm.search(None, "ALL") == ("OK", [b"1 2"])
    calm.logout()


def test_a_delivery_that_panics_gets_451_and_is_sent_again(tmp_path, monkeypatch, stopped):
    s = start(tmp_path, monkeypatch, "deliver:boom-sender")
    stopped(s)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("boom-sender@remote.test", ["alice@example.test"],
                       b"Subject: one\r\n\r\nx\r\n")
        assert e.value.smtp_code == 451 and b"4.3.0" in e.value.smtp_error, e.value
        # The same session goes on.
        c.sendmail("calm@remote.test", ["alice@example.test"], b"Subject: two\r\n\r\nx\r\n")
    assert s.wait_logged("delivery of id=")
    assert [m["Subject"] for m in s.messages("alice")] == ["two"]


def test_a_read_that_panics_ends_only_that_pop3_session(tmp_path, monkeypatch, stopped):
    s = start(tmp_path, monkeypatch, "read:X-Boom-Read")
    stopped(s)
    deliver(s, "plain")
    deliver(s, "bad", "X-Boom-Read: 1\r\n")
    p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    with pytest.raises((poplib.error_proto, EOFError, ConnectionError)):
        p.retr(2)
    assert s.wait_logged("reader helper: transfer")
    p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    assert b"Subject: plain" in b"\n".join(p.retr(1)[1])
    p.quit()


def test_a_queue_record_that_panics_is_deferred(tmp_path, monkeypatch, stopped):
    s = start(tmp_path, monkeypatch, "queue:boom-queue",
              extra="smarthost = 127.0.0.1:1\nqueue_retry = 1h")
    stopped(s)
    out = subprocess.run([BINARY, "sendmail", "-c", str(s.conf), "-f", "boom-queue@example.test",
                          "far@elsewhere.test"], input=b"Subject: q\n\nx\n",
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert s.wait_logged("queue: recording the attempt at id=", 30)
    assert len(s.queued()) == 1
    deliver(s, "still served")
    assert [m["Subject"] for m in s.messages("alice")] == ["still served"]


def test_recent_goes_to_one_session_though_its_claim_is_not_on_disk_yet(tmp_path, monkeypatch):
    """RFC 3501 2.3.2: a message is \\Recent in one session only. The
    session that claimed it leaves before the claim reached the disk
    (the move out of new/ fails here; under load a busy helper leaves
    it the same way for a while): the next session to SELECT the folder
    does not get it as \\Recent again (imaptest's stress found this)."""
    s = start(tmp_path, monkeypatch, "settle:alice")
    try:
        deliver(s, "fresh")
        first = login(s)
        first.select("INBOX")
        assert first.response("RECENT") == ("RECENT", [b"1"])
        first.logout()
        second = login(s)
        second.select("INBOX")
        assert second.response("RECENT") == ("RECENT", [b"0"])
        second.logout()
    finally:
        s.stop()
