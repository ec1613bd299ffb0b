"""The checks before content (issue 19, as Postfix's postscreen): a
client on port 25 not seen before gets a multi-line greeting whose last
line comes after `greet_delay`; one that talks before it is refused, as
is one that sends commands before our reply to HELO or EHLO (pipelining
not offered). A client that passed is greeted at once after that.
Clients connect from several loopback addresses (127.0.0.x)."""

import smtplib
import socket
import time

import pytest

from conftest import Server

DELAY = 2


@pytest.fixture
def screening(tmp_path):
    s = Server(tmp_path, extra=f"greet_delay = {DELAY}s\ntrusted_networks = 127.0.0.9/32")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def connect(server, source):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30,
                                    source_address=(source, 0))
    return sock, sock.makefile("rb")


def read_reply(f):
    """One reply's lines."""
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if not line or line[3:4] != b"-":
            return lines


def finish_passing(sock, f):
    """After the greeting: EHLO and MAIL (a client passes with its first
    command after EHLO), then QUIT."""
    sock.sendall(b"EHLO client.test\r\n")
    assert read_reply(f)[-1].startswith(b"250 ")
    sock.sendall(b"MAIL FROM:<a@mail.test>\r\n")
    assert f.readline().startswith(b"250")
    sock.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221")


def test_new_client_waits_then_passes_and_is_remembered(screening):
    sock, f = connect(screening, "127.0.0.2")
    with sock:
        start = time.monotonic()
        first = f.readline()
        assert first.startswith(b"220-mx.example.test"), first
        last = f.readline()
        waited = time.monotonic() - start
        assert last.startswith(b"220 mx.example.test"), last
        assert waited >= DELAY - 0.2, waited
        finish_passing(sock, f)
    assert screening.wait_logged("ip=127.0.0.2 passed the checks before content")
    # Remembered: greeted at once, in one line.
    sock, f = connect(screening, "127.0.0.2")
    with sock:
        start = time.monotonic()
        assert f.readline().startswith(b"220 mx.example.test")
        assert time.monotonic() - start < DELAY / 2


def pass_screen(server, source):
    """Connects, waits through the greeting, and passes."""
    sock, f = connect(server, source)
    with sock:
        while not f.readline().startswith(b"220 "):
            pass
        finish_passing(sock, f)
    assert server.wait_logged(f"ip={source} passed the checks before content")


def test_passes_survive_a_restart(tmp_path):
    """As postscreen's cache: a client that passed before a restart is
    still greeted at once after it; one never seen still waits."""
    extra = f"greet_delay = {DELAY}s\ntrusted_networks = 127.0.0.9/32"
    first = Server(tmp_path, extra=extra)
    try:
        pass_screen(first, "127.0.0.3")
    finally:
        first.stop()
    assert first.proc.returncode == 0, "".join(first.log)
    assert "127.0.0.3 " in (tmp_path / "data/screened").read_text()
    second = Server(tmp_path, extra=extra)
    try:
        sock, f = connect(second, "127.0.0.3")
        with sock:
            start = time.monotonic()
            assert f.readline().startswith(b"220 mx.example.test")
            assert time.monotonic() - start < DELAY / 2
        sock, f = connect(second, "127.0.0.4")
        with sock:
            assert f.readline().startswith(b"220-mx.example.test")
    finally:
        second.stop()
    assert second.proc.returncode == 0, "".join(second.log)


def test_talking_before_the_greeting_ends_is_refused(screening):
    sock, f = connect(screening, "127.0.0.3")
    with sock:
        assert f.readline().startswith(b"220-")
        sock.sendall(b"EHLO bot.test\r\n")
        reply = f.readline()
        assert reply.startswith(b"554 5.5.1"), reply
        assert b"talked before the greeting ended" in reply
        assert f.readline() == b"", "the connection is closed"
    assert screening.wait_logged("ip=127.0.0.3 refused before content: talked before the greeting ended")
    # Not remembered as passed: screened again.
    sock, f = connect(screening, "127.0.0.3")
    with sock:
        assert f.readline().startswith(b"220-")


def test_pipelining_before_it_is_offered_is_refused(screening):
    for source, script in [
        # MAIL sent before the reply to EHLO (which offers PIPELINING).
        ("127.0.0.4", [b"EHLO bot.test\r\nMAIL FROM:<a@mail.test>\r\n"]),
        # HELO offers no PIPELINING: MAIL and RCPT at once.
        ("127.0.0.5", [b"HELO bot.test\r\n",
                       b"MAIL FROM:<a@mail.test>\r\nRCPT TO:<bob@example.test>\r\n"]),
    ]:
        sock, f = connect(screening, source)
        with sock:
            read_reply(f)
            replies = []
            for chunk in script:
                sock.sendall(chunk)
                replies += read_reply(f)
            rest = f.read()
        said = b"".join(replies) + rest
        assert b"554 5.5.1 mx.example.test Protocol error: sent commands before our reply" in said, said
        assert screening.wait_logged(f"ip={source} refused before content: sent commands")


def test_pipelining_once_offered_is_fine(screening):
    """After the reply to EHLO, a client may send the rest at once."""
    sock, f = connect(screening, "127.0.0.6")
    with sock:
        read_reply(f)
        sock.sendall(b"EHLO client.test\r\n")
        read_reply(f)
        sock.sendall(b"MAIL FROM:<a@mail.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        codes = [read_reply(f)[-1][:3] for _ in range(3)]
        assert codes == [b"250", b"250", b"354"], codes
        sock.sendall(b"Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        assert read_reply(f)[-1].startswith(b"250")
    assert any(b"Subject: pipelined" in m for m in screening.raw_messages("bob"))


def test_real_client_and_trusted_network(screening):
    """smtplib waits for the greeting as any real client does; a client
    in trusted_networks is not screened at all."""
    with smtplib.SMTP("127.0.0.1", screening.port, timeout=30,
                      source_address=("127.0.0.7", 0)) as c:
        c.sendmail("a@mail.test", ["bob@example.test"], "Subject: waited\r\n\r\nhi\r\n")
    assert any(b"Subject: waited" in m for m in screening.raw_messages("bob"))
    sock, f = connect(screening, "127.0.0.9")
    with sock:
        start = time.monotonic()
        assert f.readline().startswith(b"220 ")
        assert time.monotonic() - start < DELAY / 2
