"""URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524) against the real
server: a URL alice makes for carol lets carol fetch that part of
alice's message and nobody else; a changed token, an expired URL or a
reset key gives NIL."""

import re
import socket

import pytest

from conftest import Server, add_user

PASSWORD = "urlauth-pw-1"

MESSAGE = (b"From: alice@example.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
           b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--b1\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b1--\r\n")


@pytest.fixture(params=["maildir", "mbox"])
def server(tmp_path, request):
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", PASSWORD)
    add_user(conf, "carol@example.test", PASSWORD)
    add_user(conf, "bob@example.test", "bob-pw-unused")
    s = Server(tmp_path, request.param, users=(tmp_path / "users").read_text(),
               extra="listen_imap = 127.0.0.1:0")
    yield s
    s.stop()


class Client:
    def __init__(self, server, user):
        self.sock = socket.create_connection(("127.0.0.1", server.ports["IMAP"]), timeout=30)
        self.f = self.sock.makefile("rb")
        self.f.readline()
        assert self.run(f'a LOGIN {user} "{PASSWORD}"'.encode())[-1].startswith(b"a OK")

    def run(self, data: bytes) -> list:
        """Sends a command tagged `a`; the lines up to its tagged answer,
        literals read whole into their line."""
        self.sock.sendall(data + b"\r\n")
        lines = []
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            while (m := re.search(rb"\{(\d+)\}\r\n$", line)):
                line = line + self.f.read(int(m.group(1))) + self.f.readline()
            lines.append(line.rstrip(b"\r\n"))
            if line.startswith(b"a "):
                return lines

    def close(self):
        self.sock.sendall(b"z LOGOUT\r\n")
        self.sock.close()


def gen(c, url: bytes) -> bytes:
    lines = c.run(b'a GENURLAUTH "%s" INTERNAL' % url)
    assert lines[-1].startswith(b"a OK"), lines
    return re.match(rb'\* GENURLAUTH "([^"]+)"', lines[0]).group(1)


def test_urlauth_for_another_user(server):
    alice = Client(server, "alice@example.test")
    lines = alice.run(b"a APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE))
    uid = re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1)
    base = b"imap://alice@example.test/INBOX/;UID=%s" % uid
    for_carol = gen(alice, base + b"/;SECTION=1;URLAUTH=user+carol%40example.test")
    assert re.search(rb":INTERNAL:[0-9a-f]{64}$", for_carol), for_carol
    # alice may not make URLs for bob's mailbox, nor without URLAUTH.
    for bad in (b"imap://bob@example.test/INBOX/;UID=1;URLAUTH=anonymous",
                b"imap://alice@example.test/Nope/;UID=1;URLAUTH=anonymous",
                base + b";URLAUTH=user+carol:INTERNAL:00"):
        assert alice.run(b'a GENURLAUTH "%s" INTERNAL' % bad)[-1].startswith(b"a NO [BADURL"), bad

    carol = Client(server, "carol@example.test")
    lines = carol.run(b'a URLFETCH "%s"' % for_carol)
    assert lines[0].startswith(b'* URLFETCH "' + for_carol + b'" {'), lines
    assert lines[0].endswith(b"\r\nsee attached"), lines
    # alice is not carol: NIL for her.
    assert alice.run(b'a URLFETCH "%s"' % for_carol)[0].endswith(b" NIL")
    # A changed token: NIL.
    forged = for_carol[:-1] + (b"0" if for_carol[-1:] != b"0" else b"1")
    assert carol.run(b'a URLFETCH "%s"' % forged)[0].endswith(b" NIL")

    # BINARY and BODYPARTSTRUCTURE of the base64 part: its octets.
    anyone = gen(alice, base + b"/;SECTION=2;URLAUTH=authuser")
    lines = carol.run(b'a URLFETCH ("%s" BINARY BODYPARTSTRUCTURE)' % anyone)
    assert b'(BODYPARTSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 4 NIL' in lines[0], lines
    assert lines[0].endswith(b"BINARY ~{4}\r\n\x00\x01\x02\x03)"), lines

    # An EXPIRE in the past: NIL.
    old = gen(alice, base + b";EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser")
    assert carol.run(b'a URLFETCH "%s"' % old)[0].endswith(b" NIL")
    # submit+: only for a submission server, which we are not.
    submit = gen(alice, base + b";URLAUTH=submit+carol%40example.test")
    assert carol.run(b'a URLFETCH "%s"' % submit)[0].endswith(b" NIL")

    # RESETKEY: every URL made before stops working.
    assert alice.run(b"a RESETKEY INBOX INTERNAL")[-1].startswith(b"a OK")
    assert carol.run(b'a URLFETCH "%s"' % for_carol)[0].endswith(b" NIL")
    assert alice.run(b"a RESETKEY Nope")[-1].startswith(b"a NO [NONEXISTENT]")
    assert alice.run(b'a GENURLAUTH "%s" HMAC' % base)[-1].startswith(b"a NO")
    alice.close()
    carol.close()


def test_urlfetch_answers_stay_within_the_largest_message(tmp_path):
    """Naming one big message many times in a URLFETCH does not make the
    server hold it many times: past max_message_size of answers, NIL."""
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", PASSWORD)
    add_user(conf, "bob@example.test", "bob-pw-unused")
    s = Server(tmp_path, users=(tmp_path / "users").read_text(),
               extra="listen_imap = 127.0.0.1:0\nmax_message_size = 100K")
    try:
        alice = Client(s, "alice@example.test")
        big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 500
        lines = alice.run(b"a APPEND INBOX {%d+}\r\n%s" % (len(big), big))
        uid = re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1)
        url = gen(alice, b"imap://alice@example.test/INBOX/;UID=%s;URLAUTH=authuser" % uid)
        lines = alice.run(b"a URLFETCH " + b" ".join([url] * 5))
        assert lines[-1].startswith(b"a OK"), lines
        # One response, a URL and its data (or NIL) five times over:
        # 40 KiB each, so two fit in 100 KiB and three are NIL.
        answer = next(l for l in lines if l.startswith(b"* URLFETCH"))
        assert answer.count(big) == 2, answer[:200]
        assert answer.count(b'" NIL') == 3, answer[:200]
        alice.close()
    finally:
        s.stop()
