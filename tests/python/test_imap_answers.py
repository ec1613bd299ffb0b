"""IMAP answers on real-world mail (issue 16, item 1), through the real
server on both stores, each on a message written to show it: TEXT finds
words in a part's MIME header; a text part without a charset is
US-ASCII in BODYSTRUCTURE; a comment standing for a display name has its
words one space apart; repeated Cc: fields make one list; a References
id broken by folding or junk still threads the reply."""

import imaplib
import smtplib

import pytest

from conftest import Server, users_with_password

PASSWORD = "answers-pw-1"

ATTACHMENT = (b"From: a@remote.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=xx\r\n\r\n"
              b"--xx\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
              b"--xx\r\nContent-Type: application/pdf\r\n"
              b"Content-Disposition: attachment; filename=\"budget-2027.pdf\"\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--xx--\r\n")
NO_CHARSET = (b"From: b@remote.test\r\nSubject: plain\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: text/plain; format=flowed\r\n\r\nhello\r\n")
NAMES = (b"From: c@remote.test (Angles  \t Puglisi)\r\nSubject: names\r\n"
         b"To: t1@example.test\r\nCc: c1@remote.test\r\nCc: c2@remote.test\r\n\r\nx\r\n")
PARENT = b"From: d@remote.test\r\nSubject: plan\r\nMessage-ID: <p1@remote.test>\r\n\r\nx\r\n"
FOLDED = (b"From: e@remote.test\r\nSubject: unrelated\r\nMessage-ID: <r1@remote.test>\r\n"
          b"References: <p1\r\n @remote.test>\r\n\r\nx\r\n")
JUNK = (b"From: f@remote.test\r\nSubject: other\r\nMessage-ID: <r2@remote.test>\r\n"
        b"In-Reply-To: <junk<r1@remote.test>\r\n\r\nx\r\n")


@pytest.fixture(params=["maildir", "mbox"])
def server(tmp_path, request):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, request.param, users=users, extra="listen_imap = 127.0.0.1:0")
    with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
        for m in (ATTACHMENT, NO_CHARSET, NAMES, PARENT, FOLDED, JUNK):
            c.sendmail("x@remote.test", ["alice@example.test"], m)
    yield s
    s.stop()


def login(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    m.login("alice@example.test", PASSWORD)
    m.select("INBOX")
    return m


def fetched(m, n, item) -> bytes:
    typ, data = m.fetch(str(n), item)
    assert typ == "OK"
    return b"".join(b"".join(d) if isinstance(d, tuple) else d for d in data)


def test_text_searches_part_headers(server):
    m = login(server)
    assert m.search(None, "TEXT", '"budget-2027"') == ("OK", [b"1"])
    assert m.search(None, "TEXT", '"filename="') == ("OK", [b"1"])
    # The top header as before, and no part header is a false hit.
    assert m.search(None, "TEXT", '"report"') == ("OK", [b"1"])
    assert m.search(None, "TEXT", '"flowed"') == ("OK", [b"2"])


def test_text_parts_default_to_us_ascii(server):
    m = login(server)
    plain = fetched(m, 2, "(BODYSTRUCTURE)")
    assert b'("text" "plain" ("format" "flowed" "charset" "us-ascii")' in plain, plain
    multi = fetched(m, 1, "(BODY)")
    assert b'("text" "plain" ("charset" "utf-8")' in multi, multi


def test_display_names_and_repeated_fields(server):
    m = login(server)
    env = fetched(m, 3, "(ENVELOPE)")
    assert b'(("Angles Puglisi" NIL "c" "remote.test"))' in env, env
    assert b'((NIL NIL "c1" "remote.test")(NIL NIL "c2" "remote.test"))' in env, env
    assert m.search(None, "CC", "c2@remote.test") == ("OK", [b"3"])


def test_broken_reference_ids_still_thread(server):
    m = login(server)
    typ, data = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    typ, data = m._untagged_response(typ, data, "THREAD")
    # 5 names <p1@...> across a fold, 6 names <r1@...> after junk.
    assert b"(4 5 6)" in data[0], data


def highest_modseq(server) -> int:
    import re
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    m.login("alice@example.test", PASSWORD)
    typ, _ = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    assert typ == "OK"
    code = m.untagged_responses.get("OK", [])
    found = [re.search(rb"HIGHESTMODSEQ (\d+)", c) for c in code]
    m.logout()
    return int(next(f for f in found if f).group(1))


def test_highestmodseq_stays_put_while_nothing_changes(server):
    """RFC 7162 3.1.2.1: the highest MODSEQ of the folder's messages and
    expunges, not the clock: the same in a new session (nobody else has
    the folder open) and after a restart, and higher after a change."""
    import time
    first = highest_modseq(server)
    time.sleep(0.05)
    assert highest_modseq(server) == first
    server.stop()
    again = Server(server.dir, server.format, users=(server.dir / "users").read_text(),
                   extra="listen_imap = 127.0.0.1:0")
    try:
        assert highest_modseq(again) == first
        m = login(again)
        m.store("1", "+FLAGS", "(\\Flagged)")
        m.logout()
        changed = highest_modseq(again)
        assert changed > first
        with smtplib.SMTP("127.0.0.1", again.port, timeout=30) as c:
            c.sendmail("x@remote.test", ["alice@example.test"], b"Subject: new\r\n\r\nx\r\n")
        assert highest_modseq(again) > changed
    finally:
        again.stop()


def test_header_searches_sort_and_thread_come_from_the_cache(tmp_path):
    """Once a helper has read a message, the fields SEARCH, SORT and
    THREAD use are kept beside the folder (postling-headers): on a warm
    folder they open no message file. Shown by spoiling every message
    file after the first search: header keys, SORT and THREAD answer as
    before; a BODY search, which must read the files, no longer finds."""
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, "maildir", users=users, extra="listen_imap = 127.0.0.1:0")
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            for i, who in enumerate(["carol", "alan", "bob"]):
                c.sendmail("x@remote.test", ["alice@example.test"],
                           f"From: {who}@remote.test\r\nSubject: Re: item {i}\r\n"
                           f"Message-ID: <m{i}@remote.test>\r\n"
                           f"References: <m{i - 1}@remote.test>\r\n\r\nbody{i}\r\n".encode())
        m = login(s)
        assert m.search(None, "FROM", "alan") == ("OK", [b"2"])
        assert m.search(None, "BODY", "body1") == ("OK", [b"2"])
        sorted_from = m.sort("(FROM)", "UTF-8", "ALL")
        assert sorted_from == ("OK", [b"2 3 1"])
        thread = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
        assert thread[0] == "OK"
        want_thread = m.untagged_responses.pop("THREAD", None)
        assert (tmp_path / "data/mail/example.test/alice/postling-headers").exists()
        box = tmp_path / "data/mail/example.test/alice"
        for p in list((box / "cur").iterdir()) + list((box / "new").iterdir()):
            p.write_bytes(b"X: spoiled\n\nnothing here\n")
        assert m.search(None, "FROM", "alan") == ("OK", [b"2"])
        assert m.search(None, "SUBJECT", '"item 2"') == ("OK", [b"3"])
        assert m.search(None, "HEADER", "Message-ID", "m0@remote.test") == ("OK", [b"1"])
        assert m.sort("(FROM)", "UTF-8", "ALL") == sorted_from
        assert m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")[0] == "OK"
        assert m.untagged_responses.pop("THREAD", None) == want_thread
        assert m.search(None, "BODY", "body1") == ("OK", [b""])
        m.logout()
    finally:
        s.stop()
