"""THREAD (RFC 5256), MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469)
against the real server, on both stores: imaplib where it has the
command, a raw socket where it sends only one literal per APPEND."""

import imaplib
import re
import socket
import time

import pytest

from conftest import Server, users_with_password

PASSWORD = "imap-secret-2"


@pytest.fixture(params=["maildir", "mbox"])
def server(tmp_path, request):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, request.param, users=users,
               extra="listen_imap = 127.0.0.1:0\nmax_message_size = 4096")
    yield s
    s.stop()


def login(server) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    assert m.login("alice@example.test", PASSWORD)[0] == "OK"
    return m


class Raw:
    """A line-oriented IMAP client that sends exactly what it is given."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.ports["IMAP"]), timeout=30)
        self.buf = b""
        self.line()
        self.run(f'a LOGIN alice@example.test "{PASSWORD}"'.encode())

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def run(self, data: bytes, tag: bytes = b"a") -> list:
        """Sends data (with its CRLF added); returns every line up to the
        tagged answer, which comes last."""
        self.sock.sendall(data + b"\r\n")
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def close(self):
        self.sock.sendall(b"z LOGOUT\r\n")
        self.sock.close()


def message(headers: str, body: str = "body") -> bytes:
    return (headers.replace("\n", "\r\n") + "\r\n\r\n" + body + "\r\n").encode()


def test_thread_references_and_orderedsubject(server):
    m = login(server)
    m.create("Talk")
    msgs = [
        "Message-ID: <1@x>\nSubject: plans\nDate: Mon, 1 Jan 2024 10:00:00 +0000",
        "Message-ID: <2@x>\nIn-Reply-To: <1@x>\nSubject: Re: plans\nDate: Mon, 1 Jan 2024 11:00:00 +0000",
        "Message-ID: <3@x>\nReferences: <1@x> <2@x>\nSubject: Re: plans\nDate: Mon, 1 Jan 2024 12:00:00 +0000",
        "Message-ID: <4@x>\nIn-Reply-To: <1@x>\nSubject: Re: plans\nDate: Mon, 1 Jan 2024 13:00:00 +0000",
        "Message-ID: <5@x>\nSubject: other\nDate: Mon, 1 Jan 2024 09:00:00 +0000",
        # A reply to a message we never had, with its subject: it joins
        # "other" by subject.
        "Message-ID: <6@x>\nReferences: <gone@x>\nSubject: Re: other\nDate: Mon, 1 Jan 2024 14:00:00 +0000",
    ]
    for h in msgs:
        assert m.append("Talk", None, None, message(h))[0] == "OK"
    m.select("Talk")
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    assert data == [b"(5 6)(1 (2 3)(4))"], data
    typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    uids = m.uid("SEARCH", "ALL")[1][0].split()
    assert data[0] == f"({uids[4].decode()} {uids[5].decode()})({uids[0].decode()} ({uids[1].decode()} {uids[2].decode()})({uids[3].decode()}))".encode()
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data == [b"(5 6)(1 (2)(3)(4))"], data
    # Search keys narrow what is threaded.
    typ, data = m.thread("REFERENCES", "UTF-8", "SUBJECT", "other")
    assert data == [b"(5 6)"], data
    with pytest.raises(imaplib.IMAP4.error, match="unknown threading algorithm"):
        m._simple_command("THREAD", "BOGUS", "UTF-8", "ALL")
    m.logout()


def test_multiappend_stores_every_message_and_answers_their_uids(server):
    r = Raw(server)
    r.run(b"c CREATE Box", b"c")
    one, two = message("Subject: one"), message("Subject: two")
    lines = r.run(b"a APPEND Box (\\Seen) {%d+}\r\n%s (\\Flagged) {%d+}\r\n%s"
                  % (len(one), one, len(two), two))
    assert re.match(rb"a OK \[APPENDUID \d+ 1:2\]", lines[-1]), lines
    lines = r.run(b"b SELECT Box", b"b")
    assert b"* 2 EXISTS" in lines
    lines = r.run(b"b FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])", b"b")
    text = b"\n".join(lines)
    assert b"\\Seen" in text and b"\\Flagged" in text
    assert b"Subject: one" in text and b"Subject: two" in text
    r.close()


def test_catenate_builds_from_urls_and_text(server):
    r = Raw(server)
    r.run(b"c CREATE Src", b"c")
    src = (b"From: a@example.test\r\nSubject: source\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=xx\r\n\r\n"
           b"--xx\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
           b"--xx--\r\n")
    lines = r.run(b"a APPEND Src {%d+}\r\n%s" % (len(src), src))
    validity, uid = re.search(rb"APPENDUID (\d+) (\d+)", lines[-1]).groups()
    url = b"/Src;UIDVALIDITY=%s/;UID=%s" % (validity, uid)
    text = b"\r\nadded\r\n"
    lines = r.run(b'a APPEND INBOX CATENATE (URL "%s/;SECTION=HEADER" URL "%s/;SECTION=1" TEXT {%d+}\r\n%s)'
                  % (url, url, len(text), text))
    assert lines[-1].startswith(b"a OK [APPENDUID"), lines
    r.run(b"b SELECT INBOX", b"b")
    lines = r.run(b"b FETCH 1 BODY.PEEK[]", b"b")
    body = b"\r\n".join(lines[1:-2])
    assert body.startswith(b"From: a@example.test\r\nSubject: source\r\n")
    assert body.endswith(b"\r\n\r\nfirst part\r\nadded"), body
    # A URL-only message on one line, with PARTIAL: the first line.
    lines = r.run(b'a APPEND INBOX CATENATE (URL "%s/;PARTIAL=0.22")' % url)
    assert lines[-1].startswith(b"a OK"), lines
    lines = r.run(b"b FETCH 2 BODY.PEEK[]", b"b")
    assert lines[0].endswith(b"{22}") and lines[1] == b"From: a@example.test", lines
    r.close()


def test_bad_urls_and_missing_folders_store_nothing(server):
    r = Raw(server)
    one = message("Subject: one")
    lines = r.run(b"a APPEND INBOX {%d+}\r\n%s" % (len(one), one))
    validity, uid = re.search(rb"APPENDUID (\d+) (\d+)", lines[-1]).groups()
    wrong = str(int(validity) + 1).encode()
    # The first message is fine, the second names a stale UIDVALIDITY:
    # neither is stored.
    lines = r.run(b'a APPEND INBOX {%d+}\r\n%s CATENATE (URL "/INBOX;UIDVALIDITY=%s/;UID=%s")'
                  % (len(one), one, wrong, uid))
    assert re.match(rb'a NO \[BADURL "/INBOX;UIDVALIDITY=\d+/;UID=\d+"\]', lines[-1]), lines
    for bad in (b"/INBOX/;UID=999", b"/Nope/;UID=1", b"/../x/;UID=1",
                b"/INBOX/;UID=1;URLAUTH=anonymous:internal:00"):
        lines = r.run(b'a APPEND INBOX CATENATE (URL "%s")' % bad)
        assert lines[-1].startswith(b"a NO [BADURL"), (bad, lines)
    lines = r.run(b'a APPEND Nope CATENATE (URL "/INBOX/;UID=%s")' % uid)
    assert lines[-1].startswith(b"a NO [TRYCREATE]"), lines
    lines = r.run(b"b STATUS INBOX (MESSAGES)", b"b")
    assert b"(MESSAGES 1)" in lines[0], lines
    # Malformed: BAD, and the session goes on.
    for junk in (b"a APPEND INBOX CATENATE ()", b"a APPEND INBOX CATENATE (URL)",
                 b'a APPEND INBOX CATENATE (TEXT "x")', b"a APPEND INBOX"):
        assert r.run(junk)[-1].startswith(b"a BAD"), junk
    r.close()


def test_multiappend_over_the_limit_is_refused_before_the_literal(server):
    r = Raw(server)
    one = message("Subject: one", "x" * 3000)
    r.sock.sendall(b"a APPEND INBOX {%d+}\r\n%s {3000}\r\n" % (len(one), one))
    line = r.line()
    assert line.startswith(b"a NO [TOOBIG]"), line
    assert r.run(b"b STATUS INBOX (MESSAGES)", b"b")[0].endswith(b"(MESSAGES 0)")
    r.close()


def test_context_search_updates_and_partial(server):
    import smtplib
    r = Raw(server)
    for i, body in enumerate(["soup", "pizza", "soup", "soup"]):
        m = message(f"Subject: m{i}", body)
        r.run(b"a APPEND INBOX {%d+}\r\n%s" % (len(m), m))
    r.run(b"b SELECT INBOX", b"b")
    lines = r.run(b"s1 SEARCH RETURN (UPDATE) BODY soup SEEN", b"s1")
    assert lines == [b'* ESEARCH (TAG "s1")', b"s1 OK SEARCH completed"], lines
    lines = r.run(b"c STORE 1,2,4 +FLAGS.SILENT (\\Seen)", b"c")
    assert b'* ESEARCH (TAG "s1") ADDTO (1 1,4)' in lines, lines
    lines = r.run(b"c STORE 1 -FLAGS.SILENT (\\Seen)", b"c")
    assert b'* ESEARCH (TAG "s1") REMOVEFROM (1 1)' in lines, lines
    # Our own SMTP delivery: the helpers read the new message's body
    # before the command that notices it completes.
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.sendmail("carol@remote.test", ["alice@example.test"],
                   "Subject: new\r\n\r\nsoup again\r\n")
    # The folder is scanned again after the 250: NOOP until it shows.
    seen = []
    for _ in range(50):
        lines = r.run(b"c NOOP", b"c")
        seen += lines
        if b"* 5 EXISTS" in lines:
            break
        time.sleep(0.1)
    assert b"* 5 EXISTS" in seen, seen
    assert not any(b"ADDTO" in l for l in seen), seen  # not \Seen yet
    lines = r.run(b"c STORE 5 +FLAGS.SILENT (\\Seen)", b"c")
    assert b'* ESEARCH (TAG "s1") ADDTO (2 5)' in lines, lines
    # An expunge reports REMOVEFROM with the numbers EXPUNGE uses.
    r.run(b"c STORE 4 +FLAGS.SILENT (\\Deleted)", b"c")
    lines = r.run(b"c EXPUNGE", b"c")
    assert b'* ESEARCH (TAG "s1") REMOVEFROM (1 4)' in lines, lines
    assert lines.index(b'* ESEARCH (TAG "s1") REMOVEFROM (1 4)') < lines.index(b"* 4 EXPUNGE")
    assert r.run(b"c CANCELUPDATE \"s1\"", b"c")[-1] == b"c OK CANCELUPDATE completed"
    lines = r.run(b"c STORE 1 +FLAGS.SILENT (\\Seen)", b"c")
    assert not any(b"ESEARCH" in l for l in lines), lines
    # PARTIAL: positions of the result, from either end.
    lines = r.run(b"p SEARCH RETURN (PARTIAL 3:2) ALL", b"p")
    assert lines[0] == b'* ESEARCH (TAG "p") PARTIAL (2:3 2:3)', lines
    lines = r.run(b"p SEARCH RETURN (PARTIAL -1:-2) ALL", b"p")
    assert lines[0] == b'* ESEARCH (TAG "p") PARTIAL (-2:-1 3:4)', lines
    lines = r.run(b"p SEARCH RETURN (PARTIAL 7:9) ALL", b"p")
    assert lines[0] == b'* ESEARCH (TAG "p") PARTIAL (7:9 NIL)', lines
    for bad in (b"1", b"1:*", b"0:2", b"-1:2"):
        assert r.run(b"p SEARCH RETURN (PARTIAL %s) ALL" % bad, b"p")[-1].startswith(b"p BAD"), bad
    assert r.run(b"p SORT RETURN (UPDATE) (DATE) UTF-8 ALL", b"p")[-1].startswith(b"p BAD")
    r.close()


def read_until(r, want: bytes, seconds: float = 5.0) -> list:
    """Lines the server sends unasked, until one contains `want`."""
    r.sock.settimeout(seconds)
    lines = []
    try:
        while True:
            line = r.line()
            lines.append(line)
            if want in line:
                return lines
    except (socket.timeout, TimeoutError):
        return lines
    finally:
        r.sock.settimeout(30)


def test_notify_tells_without_being_asked(server):
    import smtplib
    a, b = Raw(server), Raw(server)
    b.run(b"c CREATE Other", b"c")
    a.run(b"s SELECT INBOX", b"s")
    lines = a.run(b"n NOTIFY SET STATUS (selected (MessageNew MessageExpunge FlagChange)) "
                  b"(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))", b"n")
    assert lines[-1] == b"n OK NOTIFY completed", lines
    # STATUS of every other folder at once, none for the selected one.
    assert any(re.match(rb'\* STATUS "?Other"? \(MESSAGES 0 UIDNEXT \d+ UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)', l) for l in lines), lines
    assert not any(b"STATUS INBOX" in l for l in lines), lines
    # Our own delivery to the selected INBOX: EXISTS with no command.
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.sendmail("carol@remote.test", ["alice@example.test"], "Subject: hi\r\n\r\nhello\r\n")
    assert b"* 1 EXISTS" in read_until(a, b"EXISTS")
    # Another session's APPEND to another folder: its STATUS.
    m = message("Subject: other")
    b.run(b"c APPEND Other {%d+}\r\n%s" % (len(m), m), b"c")
    got = read_until(a, b"STATUS")
    assert any(re.match(rb'\* STATUS "?Other"? \(MESSAGES 1 UIDNEXT', l) for l in got), got
    # Flags changed there: STATUS with the new HIGHESTMODSEQ.
    b.run(b"c SELECT Other", b"c")
    b.run(b"c STORE 1 +FLAGS (\\Flagged)", b"c")
    got = read_until(a, b"HIGHESTMODSEQ")
    assert any(b"HIGHESTMODSEQ" in l for l in got), got
    # Folders made and subscribed by another session: LIST.
    b.run(b"c CREATE Fresh", b"c")
    got = read_until(a, b"Fresh")
    assert any(re.match(rb'\* LIST \(\) "\." "?Fresh"?$', l) for l in got), got
    b.run(b"c SUBSCRIBE Fresh", b"c")
    got = read_until(a, b"Fresh")
    assert any(re.match(rb'\* LIST \(\\Subscribed\) "\." "?Fresh"?$', l) for l in got), got
    b.run(b"c RENAME Fresh Stale", b"c")
    got = read_until(a, b"Stale")
    assert any(b"OLDNAME" in l and b"Fresh" in l for l in got), got
    # NOTIFY NONE: quiet again.
    assert a.run(b"n NOTIFY NONE", b"n")[-1] == b"n OK NOTIFY completed"
    b.run(b"c APPEND Other {%d+}\r\n%s" % (len(m), m), b"c")
    assert read_until(a, b"STATUS", 1.0) == []
    a.close()
    b.close()


def test_notify_refusals(server):
    r = Raw(server)
    lines = r.run(b"n NOTIFY SET (personal (AnnotationChange))", b"n")
    assert lines[-1].startswith(b"n NO [BADEVENT ("), lines
    for bad in (b"n NOTIFY SET (selected (MessageNew))", b"n NOTIFY SET (bogus (MessageNew))",
                b"n NOTIFY SET", b"n NOTIFY SET (personal ())"):
        assert r.run(bad, b"n")[-1].startswith(b"n BAD"), bad
    r.close()
    s = socket.create_connection(("127.0.0.1", server.ports["IMAP"]), timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"n NOTIFY NONE\r\n")
    assert f.readline().startswith(b"n BAD"), "NOTIFY before login"
    s.close()
