"""DNS blocklists (`dnsbl`, `rhsbl`) against a private Unbound serving
list zones: a listed client or sender gets 554 5.7.1 at RCPT naming the
zone and its TXT reason (as Postfix's reject_rbl_client); a list's own
error code (127.255.255.x) is ignored and logged; lists that fail their
health check (a dead one, a hijacked one that lists everything) are
suspended and refuse no one. Clients connect from several loopback
addresses (127.0.0.x)."""

import smtplib
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY, Server
from test_dns import UNBOUND, Unbound

pytestmark = pytest.mark.skipif(not Path(UNBOUND).exists(), reason="unbound missing")

LISTS = """
    local-zone: "bl.test." static
    local-data: '2.0.0.127.bl.test. A 127.0.0.2'
    local-data: '2.0.0.127.bl.test. TXT "the test entry"'
    local-data: '5.0.0.127.bl.test. A 127.0.0.2'
    local-data: '5.0.0.127.bl.test. A 127.0.0.4'
    local-data: '5.0.0.127.bl.test. TXT "Listed: see https://bl.test/query/127.0.0.5"'
    local-data: '7.0.0.127.bl.test. A 127.0.0.2'
    local-data: '6.0.0.127.bl.test. A 127.255.255.254'
    local-zone: "dead.test." static
    local-zone: "hijacked.test." redirect
    local-data: 'hijacked.test. A 127.0.0.2'
    local-zone: "dbl.test." static
    local-data: 'test.dbl.test. A 127.0.0.2'
    local-data: 'spammer.example.dbl.test. A 127.0.0.2'
    local-data: 'spammer.example.dbl.test. TXT "spam domain"'
    local-zone: "uri.test." static
    local-data: 'test.uri.test. A 127.0.0.2'
    local-data: 'pills.example.uri.test. A 127.0.0.2'
"""

CONFIG = """
dnsbl = bl.test, dead.test hijacked.test
rhsbl = dbl.test
uribl = uri.test
trusted_networks = 127.0.0.7/32
"""


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bl")
    dns = Unbound(tmp, LISTS)
    (tmp / "srv").mkdir()
    s = None
    try:
        s = Server(tmp / "srv", extra=f"dns_servers = 127.0.0.1:{dns.port}\n{CONFIG.strip()}")
        assert s.wait_logged("blocklist bl.test in use", 20), "".join(s.log)
        assert s.wait_logged("blocklist dbl.test in use", 20), "".join(s.log)
        assert s.wait_logged("blocklist uri.test in use", 20), "".join(s.log)
        yield s
    finally:
        if s:
            s.stop()
        dns.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def rcpt_reply(port, source, sender="someone@mail.test"):
    """The reply to RCPT, from a client at `source`."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30, local_hostname="client.test",
                      source_address=(source, 0)) as c:
        c.ehlo()
        assert c.mail(sender)[0] == 250
        return c.rcpt("bob@example.test")


def test_listed_client_gets_554_naming_the_list(lists):
    code, text = rcpt_reply(lists.port, "127.0.0.5")
    assert code == 554, text
    assert text.decode() == ("5.7.1 Service unavailable; Client host [127.0.0.5] blocked "
                             "using bl.test; Listed: see https://bl.test/query/127.0.0.5")
    assert lists.wait_logged('"5.0.0.127.bl.test" listed by bl.test (127.0.0.2,127.0.0.4)')


def test_clean_client_is_accepted(lists):
    with smtplib.SMTP("127.0.0.1", lists.port, timeout=30, source_address=("127.0.0.3", 0)) as c:
        c.sendmail("someone@mail.test", ["bob@example.test"],
                   "From: someone@mail.test\r\nSubject: clean\r\n\r\nhello\r\n")
    assert any(b"Subject: clean" in m for m in lists.raw_messages("bob"))


def pipelined(port, source, sender):
    """The final reply lines to a whole transaction sent in one write."""
    with socket.create_connection(("127.0.0.1", port), timeout=30,
                                  source_address=(source, 0)) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220")
        sock.sendall(f"EHLO client.test\r\nMAIL FROM:<{sender}>\r\n"
                     "RCPT TO:<bob@example.test>\r\nDATA\r\nQUIT\r\n".encode())
        replies = []
        while line := f.readline():
            if line[3:4] == b" ":
                replies.append(line.decode().strip())
        return replies


def test_pipelined_rcpt_waits_for_the_lists(lists):
    """A client that sends the whole transaction at once, before the
    sender list has answered (it is asked at MAIL): its RCPT is read
    only once the list has, and refused; the DATA after it finds no
    recipient. The same for a listed client."""
    for source, sender in [("127.0.0.3", "x@spammer.example"), ("127.0.0.5", "a@mail.test")]:
        replies = pipelined(lists.port, source, sender)
        assert [r[:3] for r in replies] == ["250", "250", "554", "503", "221"], replies


def test_list_error_code_is_ignored(lists):
    """127.255.255.254 is the list speaking of itself (a public
    resolver): never a listing."""
    code, text = rcpt_reply(lists.port, "127.0.0.6")
    assert code == 250, text
    assert lists.wait_logged("blocklist bl.test answered 127.255.255.254")


def test_dead_and_hijacked_lists_are_suspended(lists):
    assert lists.wait_logged("blocklist dead.test suspended: it does not list its test entry")
    assert lists.wait_logged("blocklist hijacked.test suspended: it lists the entry it must not")
    # hijacked.test lists every address: none is refused for it.
    code, text = rcpt_reply(lists.port, "127.0.0.8")
    assert code == 250, text


def test_listed_sender_domain(lists):
    code, text = rcpt_reply(lists.port, "127.0.0.3", sender="x@spammer.example")
    assert code == 554, text
    assert text.decode() == ("5.7.1 Service unavailable; Sender address [x@spammer.example] "
                             "blocked using dbl.test; spam domain")
    # The next transaction's clean sender is asked afresh.
    with smtplib.SMTP("127.0.0.1", lists.port, timeout=30, source_address=("127.0.0.3", 0)) as c:
        c.ehlo()
        c.mail("x@spammer.example")
        assert c.rcpt("bob@example.test")[0] == 554
        c.rset()
        c.mail("ok@mail.test")
        assert c.rcpt("bob@example.test")[0] == 250


def test_trusted_client_is_not_refused(lists):
    """127.0.0.7 is listed, and in trusted_networks: trust wins."""
    code, text = rcpt_reply(lists.port, "127.0.0.7")
    assert code == 250, text


def test_check_warns_of_public_resolvers(tmp_path):
    """Blocklists refuse queries from public resolvers (or answer
    127.255.255.254): `postling check` says so."""
    (tmp_path / "users").write_text("")
    conf = tmp_path / "postling.conf"
    conf.write_text("hostname = mx.example.test\ndomains = example.test\n"
                    "data_dir = data\nusers_file = users\n"
                    "dns_servers = 8.8.8.8\ndnsbl = zen.spamhaus.org\n")
    out = subprocess.run([BINARY, "check", "-c", str(conf)], capture_output=True,
                         text=True, timeout=30)
    said = out.stdout + out.stderr
    assert "8.8.8.8 is a public resolver" in said, said
    conf.write_text(conf.read_text().replace("8.8.8.8", "127.0.0.1"))
    out = subprocess.run([BINARY, "check", "-c", str(conf)], capture_output=True,
                         text=True, timeout=30)
    assert "public resolver" not in out.stdout + out.stderr


def test_listed_link_sends_the_message_to_junk(lists):
    """uribl: the registered domain of each link in the text (here in
    quoted-printable HTML, a subdomain of the listed domain) is asked;
    a listed one sends the message to Junk, saying why."""
    html = ('<p>Cheap <a href=3D"https://shop.pills.example/buy">pills</a> and=\r\n'
            ' <a href=3D"http://fine.example/">more</a></p>')
    listed = ("From: someone@mail.test\r\nTo: bob@example.test\r\nSubject: linked\r\n"
              "MIME-Version: 1.0\r\nContent-Type: text/html\r\n"
              f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{html}\r\n")
    clean = ("From: someone@mail.test\r\nTo: bob@example.test\r\nSubject: unlisted link\r\n"
             "\r\nSee https://fine.example/page\r\n")
    for msg in (listed, clean):
        with smtplib.SMTP("127.0.0.1", lists.port, timeout=30, source_address=("127.0.0.9", 0)) as c:
            c.sendmail("someone@mail.test", ["bob@example.test"], msg)
    junk = lists.dir / "data/mail/example.test/bob/.Junk"
    stored = [p.read_bytes() for d in ("new", "cur") for p in (junk / d).glob("*")]
    assert len(stored) == 1 and b"Subject: linked" in stored[0], stored
    assert stored[0].startswith(b"X-Spam: yes\n"), "our lines come first"
    assert b'X-Spam-Status: Yes, reason="URIBL uri.test lists pills.example"' in stored[0]
    assert any(b"Subject: unlisted link" in m for m in lists.raw_messages("bob"))
    assert lists.wait_logged("link domain \"pills.example\" listed by uri.test")
