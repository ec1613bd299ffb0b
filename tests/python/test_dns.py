"""Our own resolver, in the loop, against a private Unbound on a free
loopback port (Debian's package; never the machine's resolver): the
client's reverse name in Received, over UDP and, when the answer is too
big for UDP, over TCP; and a resolver that does not answer delays
nothing."""

import smtplib
import socket
import time
from pathlib import Path

import pytest

from conftest import Server
from peers import UNBOUND, Unbound, free_port  # noqa: F401 (others import them from here)


def received_of_a_message(server) -> str:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.ehlo("client-helo.example")
        # Give the reverse lookup a moment: it never holds the session up.
        time.sleep(0.5)
        s.sendmail("x@remote.test", ["alice@example.test"], "Subject: hi\r\n\r\nhello\r\n")
    new = server.dir / "data/mail/example.test/alice/new"
    deadline = time.time() + 10
    while time.time() < deadline:
        files = list(new.iterdir()) if new.exists() else []
        if files:
            text = files[0].read_text()
            return next(l for l in text.splitlines() if l.startswith("Received:"))
        time.sleep(0.05)
    raise AssertionError("not delivered")


@pytest.mark.skipif(not Path(UNBOUND).exists(), reason="unbound not installed")
def test_received_names_the_client_from_reverse_dns(tmp_path):
    dns = Unbound(tmp_path, '    local-data-ptr: "127.0.0.1 client.example.test"')
    try:
        s = Server(tmp_path, extra=f"dns_servers = 127.0.0.1:{dns.port}")
        try:
            line = received_of_a_message(s)
            assert line == "Received: from client-helo.example (client.example.test [127.0.0.1])", line
            assert any('ptr="client.example.test"' in l for l in s.log), s.log[-20:]
        finally:
            s.stop()
    finally:
        dns.stop()


@pytest.mark.skipif(not Path(UNBOUND).exists(), reason="unbound not installed")
def test_an_answer_too_big_for_udp_comes_over_tcp(tmp_path):
    # 40 long PTR names: far over the 1232 octets we accept over UDP.
    names = [f"{'n' * 50}-{i}.example.test" for i in range(40)]
    local = "\n".join(f'    local-data: "1.0.0.127.in-addr.arpa. PTR {n}."' for n in names)
    dns = Unbound(tmp_path, local)
    try:
        s = Server(tmp_path, extra=f"dns_servers = 127.0.0.1:{dns.port}")
        try:
            line = received_of_a_message(s)
            got = line.split("(", 1)[1].split(" ")[0]
            assert got in names, line
        finally:
            s.stop()
    finally:
        dns.stop()


def test_a_silent_resolver_delays_nothing(tmp_path):
    # A UDP socket that reads queries and never answers.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        s = Server(tmp_path, extra=f"""dns_servers = 127.0.0.1:{silent.getsockname()[1]}
            inbound_checks = none""")
        try:
            started = time.monotonic()
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.ehlo("quick.example")
                c.sendmail("x@remote.test", ["alice@example.test"], "Subject: hi\r\n\r\nhello\r\n")
            assert time.monotonic() - started < 2
            silent.settimeout(5)
            query, _ = silent.recvfrom(2048)
            assert b"\x011\x010\x010\x03127\x07in-addr\x04arpa" in query
            new = s.dir / "data/mail/example.test/alice/new"
            text = next(new.iterdir()).read_text()
            assert "Received: from quick.example ([127.0.0.1])" in text, text
        finally:
            s.stop()
    finally:
        silent.close()


def test_a_silent_resolver_delays_checks_only_to_their_deadline(tmp_path):
    """With the checks on, a resolver that never answers holds the reply
    to DATA only until the lookups time out: then temperror, delivered."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        s = Server(tmp_path, extra=f"dns_servers = 127.0.0.1:{silent.getsockname()[1]}")
        try:
            started = time.monotonic()
            with smtplib.SMTP("127.0.0.1", s.port, timeout=60) as c:
                c.ehlo("quick.example")
                c.sendmail("x@remote.test", ["alice@example.test"],
                           "From: x@remote.test\r\nSubject: hi\r\n\r\nhello\r\n")
            # Each lookup has two tries of 2 s; the checks' deadline is 20 s.
            assert time.monotonic() - started < 21
            new = s.dir / "data/mail/example.test/alice/new"
            text = next(new.iterdir()).read_text()
            assert "spf=temperror smtp.mailfrom=x@remote.test" in text, text
            assert "dmarc=temperror header.from=remote.test" in text, text
            assert "iprev=temperror" in text, text
        finally:
            s.stop()
    finally:
        silent.close()
