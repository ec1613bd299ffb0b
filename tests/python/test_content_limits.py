"""Hostile message content against the real server (issue 15): one
stranger's message must not crash IMAP's helpers or stall them for
everyone, and one user's command must not make the server copy the
folder over and over. Each message here once panicked a helper (the
session then waited forever) or cost minutes of quadratic work; the
IMAP client's 30 s timeout turns either into a failure."""

import imaplib
import smtplib
import socket

import pytest

from conftest import Server, make_maildir, users_with_password
from test_memory import RssPeak

PASSWORD = "content-secret-1"


@pytest.fixture(params=["maildir", "mbox"])
def server(tmp_path, request):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, request.param, users=users,
               extra="listen_imap = 127.0.0.1:0")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log[-30:])


def fold(name: str, words, width: int = 900) -> bytes:
    """A header field of `words` joined by spaces, folded under the
    1000-octet line limit."""
    lines, cur = [], name + ":"
    for w in words:
        if len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = ""
        cur += " " + w
    lines.append(cur)
    return "\r\n".join(lines).encode() + b"\r\n"


def chunked(name: str, value: str, width: int = 900) -> bytes:
    """A field whose value has no spaces of its own, folded every
    `width` octets (the folding white space is all the parser sees)."""
    pieces = [value[i:i + width] for i in range(0, len(value), width)]
    return (name + ": " + "\r\n ".join(pieces)).encode() + b"\r\n"


def hostile_messages():
    base = b"From: x@remote.test\r\nMessage-ID: <%d@remote.test>\r\n"
    heads = [
        # RFC 2047 word with an RFC 2231 language, a 2-octet character
        # at its end: sliced inside the character, a panic.
        b"Subject: =?utf-8*xx?Q?\xc3\xa9?=\r\n",
        # 80,000 References ids: THREAD built a chain of 80,000 nodes
        # on the loop, quadratically, and recursed off the stack.
        fold("References", [f"<r{i}@remote.test>" for i in range(80_000)]),
        # Dots, <>, colons: every colon rescanned the piece.
        chunked("To", "." * 400_000 + "<>" + ":" * 400_000),
        # Encoded words that never close: a scan to the end per `=?`.
        fold("Subject", ["=?a?b?c"] * 120_000),
        # Reply markers: the rest copied at every step.
        fold("Subject", ["Re:"] * 200_000),
    ]
    return [base % i + h + b"\r\nbody text\r\n" for i, h in enumerate(heads)]


def deliver(server, messages):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        for m in messages:
            s.sendmail("x@remote.test", ["alice@example.test"], m)


def login(server) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    m._mode_utf8 = False
    assert m.login("alice@example.test", PASSWORD)[0] == "OK"
    return m


def test_hostile_headers_are_answered_and_the_server_lives_on(server):
    msgs = hostile_messages()
    deliver(server, msgs)
    m = login(server)
    assert m.select("INBOX")[1] == [str(len(msgs)).encode()]
    typ, data = m.fetch("1:*", "(ENVELOPE)")
    heads = [d[0] if isinstance(d, tuple) else d for d in data]
    assert typ == "OK"
    assert sum(1 for h in heads if b" (ENVELOPE (" in h) == len(msgs)
    assert m.search(None, "SUBJECT", "zzz") == ("OK", [b""])
    assert m.search(None, "TO", "zzz") == ("OK", [b""])
    typ, data = m.search(None, "SUBJECT", '"=?a?b?c"')
    assert typ == "OK" and data == [b"4"]
    typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and len(data[0].split()) == len(msgs)
    typ, data = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    typ, data = m._simple_command("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK"
    typ, data = m.search(None, "HEADER", "References", '"<r0@remote.test>"')
    assert typ == "OK" and data == [b"2"]
    m.logout()
    # Every service still answers.
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as s:
        assert s.noop()[0] == 250


def test_a_thread_deeper_than_any_stack(server):
    """3,000 messages each answering the last: THREAD REFERENCES comes
    back as one chain (the tree is walked without recursion)."""
    n = 3000
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        for i in range(n):
            refs = f"References: <{i - 1}@t.test>\r\n" if i else ""
            s.sendmail("x@remote.test", ["alice@example.test"],
                       f"Message-ID: <{i}@t.test>\r\n{refs}Subject: t\r\n\r\nx\r\n".encode())
    m = login(server)
    m.select("INBOX")
    typ, data = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    typ, data = m._untagged_response(typ, data, "THREAD")
    chain = data[0].decode()
    assert chain == "(" + " ".join(str(i) for i in range(1, n + 1)) + ")"
    m.logout()


@pytest.fixture
def big_folder(tmp_path):
    """alice with 2,000 messages in a Maildir INBOX."""
    users = users_with_password(tmp_path, PASSWORD)
    make_maildir(tmp_path / "data/mail/example.test/alice", 2000)
    s = Server(tmp_path, "maildir", users=users, extra="listen_imap = 127.0.0.1:0")
    yield s
    s.stop()


def raw_command(sock, f, tag: bytes, command: bytes) -> list:
    sock.sendall(tag + b" " + command + b"\r\n")
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def test_sequence_sets_are_normalised_before_anything_walks_them(big_folder):
    """10,000 copies of 1:* name 2,000 messages once (they were copied
    once per range, 77 MiB); a UID range to 2^32-1 with VANISHED is
    answered from the gaps, not by visiting four billion numbers."""
    sock = socket.create_connection(("127.0.0.1", big_folder.ports["IMAP"]), timeout=30)
    f = sock.makefile("rb")
    f.readline()
    raw_command(sock, f, b"a", f'LOGIN alice@example.test "{PASSWORD}"'.encode())
    raw_command(sock, f, b"b", b"ENABLE QRESYNC")
    assert raw_command(sock, f, b"c", b"SELECT INBOX")[-1].startswith(b"c OK")
    many = b",".join([b"1:*"] * 10_000)
    with RssPeak(big_folder.proc.pid) as rss:
        lines = raw_command(sock, f, b"d", b"FETCH " + many + b" (FLAGS)")
    assert lines[-1].startswith(b"d OK")
    assert len(lines) == 2001
    assert rss.growth < 16 * 1024, rss.growth
    # Thousands of flag keys over the folder: the helpers' work, not the
    # loop's, and the same answer.
    lines = raw_command(sock, f, b"s", b"SEARCH " + b" ".join([b"UNDELETED"] * 3000))
    assert lines[-1].startswith(b"s OK"), lines[-1]
    hits = [l for l in lines if l.startswith(b"* SEARCH")][0].split()[2:]
    assert len(hits) == 2000 and hits[0] == b"1" and hits[-1] == b"2000"
    lines = raw_command(sock, f, b"f", b"UID STORE 1:* +FLAGS (\\Deleted)")
    assert lines[-1].startswith(b"f OK")
    raw_command(sock, f, b"g", b"UID EXPUNGE 10:20")
    lines = raw_command(sock, f, b"h",
                        b"UID FETCH 1:4294967295 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert lines[-1].startswith(b"h OK"), lines[-1]
    vanished = [l for l in lines if l.startswith(b"* VANISHED (EARLIER)")]
    assert vanished == [b"* VANISHED (EARLIER) 10:20\r\n"], vanished
    sock.close()
