"""IMAP through Python's imaplib against the real server (Maildir): login,
folders, SELECT, APPEND, FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE,
IDLE woken by our own SMTP delivery, and bad input answered with BAD."""

import imaplib
import re
import smtplib
import socket
import time

import pytest

from conftest import Server, users_with_password

PASSWORD = "imap-secret-1"


@pytest.fixture
def server(tmp_path):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, "maildir", extra="listen_imap = 127.0.0.1:0",
               users=users)
    yield s
    s.stop()


def login(server) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    typ, _ = m.login("alice@example.test", PASSWORD)
    assert typ == "OK"
    return m


def deliver(server, subject: str, body: str = "hello"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.sendmail("carol@remote.test", ["alice@example.test"],
                   f"From: carol@remote.test\r\nTo: alice@example.test\r\n"
                   f"Subject: {subject}\r\n\r\n{body}\r\n")


MESSAGE = (b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
           b"Subject: appended\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"\r\nHello, IMAP.\r\nSecond line.\r\n")


def test_login_capabilities_and_default_folders(server):
    m = login(server)
    typ, caps = m.capability()
    caps = caps[0].decode()
    for c in ("IMAP4rev1", "IMAP4rev2", "IDLE", "UIDPLUS", "MOVE",
              "SPECIAL-USE", "LITERAL+", "ENABLE", "NAMESPACE"):
        assert c in caps.split(), c
    typ, boxes = m.list()
    assert typ == "OK"
    text = b"\n".join(boxes).decode()
    for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                      ("Trash", "\\Trash"), ("Junk", "\\Junk"),
                      ("Archive", "\\Archive")):
        assert re.search(rf'\({re.escape(chr(92))}HasNoChildren {re.escape(use)}\) "\." "?{name}"?', text), text
    assert "INBOX" in text
    typ, subs = m.lsub()
    assert b"Sent" in b"\n".join(subs)
    # INBOX is subscribed with the default folders.
    assert any(l.endswith(b' INBOX') or l.endswith(b' "INBOX"') for l in subs), subs
    m.logout()


def test_wrong_password_is_refused(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login("alice@example.test", "wrong")
    m.logout()


def test_select_fetch_store_search_expunge(server):
    deliver(server, "first")
    deliver(server, "second")
    m = login(server)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    subjects = [d[1] for d in data if isinstance(d, tuple)]
    assert subjects == [b"Subject: first\r\n\r\n", b"Subject: second\r\n\r\n"]
    # Sizes are what BODY[] really sends.
    typ, data = m.fetch("2", "(RFC822.SIZE BODY.PEEK[])")
    size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
    assert size == len(data[0][1])
    assert data[0][1].endswith(b"hello\r\n")
    # PEEK left \Seen alone; BODY[] sets it.
    typ, data = m.fetch("1", "FLAGS")
    assert b"\\Seen" not in data[0]
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert b"\\Seen" in data[0][0] or b"\\Seen" in b"".join(
        x if isinstance(x, bytes) else x[0] for x in data)
    typ, data = m.search(None, "UNSEEN")
    assert data == [b"2"]
    typ, data = m.store("2", "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Important" in data[0]
    typ, data = m.search(None, "KEYWORD", "$Important")
    assert data == [b"2"]
    m.store("1", "+FLAGS.SILENT", "\\Deleted")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1"]
    typ, data = m.uid("SEARCH", "ALL")
    assert data == [b"2"]
    m.logout()
    # The flags are in the file name, where mutt and Dovecot look.
    names = [p.name for p in (server.mailbox_path("alice") / "cur").iterdir()]
    assert len(names) == 1 and names[0].endswith(":2,Fa"), names
    keywords = (server.mailbox_path("alice") / "dovecot-keywords").read_text()
    assert keywords == "0 $Important\n"


def test_append_copy_move_and_uids(server):
    m = login(server)
    typ, data = m.append("Drafts", "(\\Draft)", '"7-Feb-1994 21:52:25 -0800"', MESSAGE)
    assert typ == "OK"
    code = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert code and code.group(2) == b"1"
    validity = code.group(1)
    typ, data = m.select("Drafts")
    assert data == [b"1"]
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert data[0][1] == MESSAGE
    assert b'INTERNALDATE "08-Feb-1994 05:52:25 +0000"' in data[0][0]
    assert b"\\Draft" in data[0][0]
    typ, data = m.status("Drafts", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert re.search(rb"MESSAGES 1 UIDNEXT 2 UIDVALIDITY " + validity + rb" UNSEEN 1", data[0])
    typ, data = m.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = m.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    typ, data = m.select("Drafts")
    assert data == [b"0"]
    for box in ("Archive", "Trash"):
        typ, data = m.select(box)
        assert data == [b"1"], box
        typ, data = m.fetch("1", "BODY.PEEK[]")
        assert data[0][1] == MESSAGE
    typ, data = m.append("NoSuchFolder", None, None, MESSAGE)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.logout()
    # UIDs live in dovecot-uidlist, in Dovecot's format.
    uidlist = (server.mailbox_path("alice") / ".Trash" / "dovecot-uidlist").read_text()
    assert re.match(r"3 V\d+ N2\n1 :\S+\n$", uidlist), uidlist


def test_create_rename_delete_subscribe(server):
    m = login(server)
    assert m.create("Lists.rust")[0] == "OK"
    assert m.create("Lists.rust")[0] == "NO"
    typ, data = m.list('""', "Lists*")
    text = b"\n".join(data)
    assert b'(\\HasChildren) "." "Lists"' in text
    assert b'(\\HasNoChildren) "." "Lists.rust"' in text
    assert m.rename("Lists", "Mailing")[0] == "OK"
    typ, data = m.list('""', "Mailing.%")
    assert b"Mailing.rust" in data[0]
    assert m.subscribe("Mailing.rust")[0] == "OK"
    typ, data = m.lsub('""', "Mailing.*")
    assert b"Mailing.rust" in data[0]
    assert m.delete("Mailing.rust")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    assert (server.mailbox_path("alice") / ".Mailing").is_dir()
    assert not (server.mailbox_path("alice") / ".Mailing.rust").exists()
    m.logout()


def test_names_never_leave_the_users_folder(server):
    m = login(server)
    for bad in ("../bob", ".hidden", "a..b", "a/b", "~"):
        typ, data = m.create(f'"{bad}"')
        assert typ == "NO", bad
    typ, data = m.select('"../../bob@example.test"')
    assert typ == "NO"
    # A trailing separator only announces children (RFC 9051 6.3.4).
    assert m.create("Parent.")[0] == "OK"
    typ, data = m.list('""', "Parent")
    assert b'"Parent"' in data[0]
    m.logout()
    assert not any(p.name.startswith("..") for p in server.mailbox_path("alice").iterdir()
                   if p.name not in (".", ".."))


def test_idle_wakes_on_delivery(server):
    m = login(server)
    m.select("INBOX")
    sock = m.socket()
    tag = b"i1"
    sock.sendall(tag + b" IDLE\r\n")
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+")
    started = time.monotonic()
    deliver(server, "while idle")
    sock.settimeout(10)
    line = f.readline()
    assert line == b"* 1 EXISTS\r\n", line
    assert time.monotonic() - started < 5
    sock.sendall(b"DONE\r\n")
    rest = f.readline()
    while rest.startswith(b"*"):
        rest = f.readline()
    assert rest.startswith(tag + b" OK"), rest
    sock.close()


def test_two_sessions_see_each_others_changes(server):
    deliver(server, "shared")
    a, b = login(server), login(server)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "\\Answered")
    typ, data = b.noop()
    assert any(b"\\Answered" in d for d in b.untagged_responses.get("FETCH", []) + [b""]) or typ == "OK"
    typ, data = b.fetch("1", "FLAGS")
    assert b"\\Answered" in data[0]
    a.store("1", "+FLAGS", "\\Deleted")
    a.expunge()
    b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [b"1"]
    a.logout()
    b.logout()


def test_garbage_gets_bad_and_the_session_goes_on(server):
    sock = socket.create_connection(("127.0.0.1", server.ports["IMAP"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    for bad in (b"\r\n", b"a1 FROB\r\n", b"a2 FETCH\r\n", b"a3 LOGIN\r\n",
                b"a4 SELECT INBOX\r\n", b"a5 SEARCH (((\r\n",
                b"a6 LOGIN {99999999}\r\n"):
        sock.sendall(bad)
        line = f.readline()
        assert b" BAD " in line or line.startswith(b"* BAD"), (bad, line)
    sock.sendall(b"a7 NOOP\r\n")
    assert f.readline().startswith(b"a7 OK")
    # A non-synchronizing literal over 4 KiB before login: BAD, and its
    # octets are skipped, not read as commands.
    sock.sendall(b"a8 LOGIN {5000+}\r\n" + b"x" * 5000 + b" y\r\na9 NOOP\r\n")
    assert b"BAD" in f.readline()
    assert f.readline().startswith(b"a9 OK")
    sock.sendall(b"a10 LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    sock.close()


def test_append_over_the_limit_is_refused_before_continuation(server):
    m = login(server)
    sock = m.socket()
    f = sock.makefile("rb")
    sock.sendall(b"t1 APPEND INBOX {999999999}\r\n")
    line = f.readline()
    assert line.startswith(b"t1 NO [TOOBIG]"), line
    sock.sendall(b"t2 NOOP\r\n")
    assert f.readline().startswith(b"t2 OK")
    sock.close()


def test_changes_by_other_programs_reach_idle_sessions(server):
    deliver(server, "one")
    m = login(server)
    m.select("INBOX")
    sock = m.socket()
    f = sock.makefile("rb")
    sock.sendall(b"i1 IDLE\r\n")
    assert f.readline().startswith(b"+")
    box = server.mailbox_path("alice")
    # Another program (mutt) marks the message read by renaming it...
    [old] = [p for p in (box / "new").iterdir()] + [p for p in (box / "cur").iterdir()]
    base = old.name.split(":")[0]
    old.rename(box / "cur" / (base + ":2,S"))
    # Folders are looked at every 2 s; a loaded CI machine may be slow.
    sock.settimeout(20)
    line = f.readline()
    assert line.startswith(b"* 1 FETCH (FLAGS (") and b"\\Seen" in line, line
    # ...and a delivery agent drops a new one straight into new/.
    (box / "tmp" / "x").write_bytes(b"Subject: dropped\n\nhi\n")
    (box / "tmp" / "x").rename(box / "new" / "1700000000.M1P1.other")
    assert f.readline() == b"* 2 EXISTS\r\n"
    sock.sendall(b"DONE\r\n")
    rest = f.readline()
    while rest.startswith(b"*"):
        rest = f.readline()
    assert rest.startswith(b"i1 OK")
    sock.close()


def test_large_message_streams_whole_and_in_parts(server):
    # Lines of varied length, some CRLF-sensitive, 20 MiB in all.
    body = b"".join(b"line %07d " % i + b"x" * (i % 97) + b"\r\n"
                    for i in range(200_000))
    msg = b"From: a@x\r\nSubject: big\r\n\r\n" + body
    with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as s:
        s.sendmail("a@x.test", ["alice@example.test"], msg)
    m = login(server)
    m.select("INBOX")
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
    whole = data[0][1]
    assert size == len(whole)
    assert whole.endswith(msg)  # after our trace headers
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<1000000.70000>)")
    assert data[0][1] == body[1_000_000:1_070_000]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.5>)")
    assert data[0][1] == b"Subject: big\r\n\r\n"
    assert data[1][1] == whole[:5]
    m.logout()


def test_failed_logins_share_the_lockout(tmp_path):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, "maildir", users=users, extra="""
        listen_imap = 127.0.0.1:0
        listen_pop3 = 127.0.0.1:0
        auth_failure_limit = 2
        auth_failure_window = 60
    """)
    try:
        sock = socket.create_connection(("127.0.0.1", s.ports["IMAP"]), timeout=30)
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"a LOGIN alice@example.test wrong\r\nb LOGIN alice@example.test wrong\r\n")
        assert f.readline().startswith(b"a NO [AUTHENTICATIONFAILED]")
        assert f.readline().startswith(b"b NO [AUTHENTICATIONFAILED]")
        assert f.readline().startswith(b"* BYE [UNAVAILABLE]")
        sock.close()
        # The address is refused by every service now, in its own words.
        for service, start in (("IMAP", b"* BYE [UNAVAILABLE]"), ("POP3", b"-ERR"),
                               ("SMTP", b"421 4.7.0")):
            port = s.ports[service] if service != "SMTP" else s.port
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                assert c.recv(200).startswith(start), service
    finally:
        s.stop()


def test_envelopes_come_from_the_cache(server):
    """A second folder listing reads no message file: the ENVELOPE is in
    postling-envelopes. (Shown by changing a file in place, which Maildir
    never does: the listing still shows what the cache holds.)"""
    deliver(server, "aaaa")
    m = login(server)
    m.select("INBOX")
    typ, data = m.fetch("1", "(ENVELOPE RFC822.SIZE)")
    assert b'"aaaa"' in data[0]
    cache = server.mailbox_path("alice") / "postling-envelopes"
    assert cache.exists()
    [path] = list((server.mailbox_path("alice") / "cur").iterdir()) + \
        list((server.mailbox_path("alice") / "new").iterdir())
    path.write_bytes(path.read_bytes().replace(b"Subject: aaaa", b"Subject: bbbb"))
    typ, data = m.fetch("1", "(ENVELOPE RFC822.SIZE INTERNALDATE)")
    assert b'"aaaa"' in data[0]
    typ, data = m.fetch("1", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert data[0][1] == b"Subject: bbbb\r\n\r\n"
    m.logout()


def test_sort_and_esort(server):
    for subject in ("Re: banana", "apple", "[list] Fwd: cherry"):
        deliver(server, subject)
    m = login(server)
    m.select("INBOX")
    typ, data = m.sort("(SUBJECT)", "UTF-8", "ALL")
    assert data == [b"2 1 3"]
    typ, data = m.sort("(REVERSE SUBJECT)", "UTF-8", "ALL")
    assert data == [b"3 1 2"]
    # ESORT: the first in sort order, and how many.
    typ, data = m._simple_command("UID", "SORT", "RETURN (MIN COUNT)", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK"
    assert m.untagged_responses.pop("ESEARCH")[0].endswith(b"UID MIN 2 COUNT 3")
    m.logout()


def test_a_date_header_of_any_octets_is_safe_to_search_and_sort(server):
    # A month word with a character across its third octet, huge numbers.
    for date in ("1 aa\u00e9 2008 10:00 +0000", "99999999999 Feb 2008",
                 "1 Feb 99999999999999 00:00 +\u00e9\u00e9"):
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
            s.sendmail("carol@remote.test", ["alice@example.test"],
                       f"Date: {date}\r\nSubject: odd date\r\n\r\nx\r\n".encode())
    m = login(server)
    m.select("INBOX")
    typ, data = m.search(None, "SENTBEFORE", "1-Jan-2020")
    assert typ == "OK", data
    typ, data = m.sort("(DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data[0].split() == [b"1", b"2", b"3"], data
    assert m.noop()[0] == "OK"
    m.logout()
