"""Greylisting (issue 19, RFC 6647): a stranger's first try at a (client
/24, sender, recipient) triplet gets 451 4.7.1; a retry before the
delay too; after it, accepted, and the client's network then passes at
once; the state survives a restart. Real clients over loopback
addresses (127.0.0.x)."""

import os
import smtplib
import time

import pytest

from conftest import Server

DELAY = 2


def rcpt(server, source, sender, to="bob@example.test"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30,
                      source_address=(source, 0)) as c:
        c.ehlo()
        assert c.mail(sender)[0] == 250
        return c.rcpt(to)


@pytest.fixture
def greylisting(tmp_path):
    servers = []

    def start():
        s = Server(tmp_path, extra=f"greylist = on\ngreylist_delay = {DELAY}s\n"
                                   "trusted_networks = 127.0.9.0/24")
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        assert s.proc.returncode == 0, "".join(s.log)


def test_first_try_deferred_retry_accepted(greylisting):
    s = greylisting()
    code, text = rcpt(s, "127.0.1.2", "a@mail.test")
    assert code == 451, text
    assert text.startswith(b"4.7.1 <bob@example.test>: Greylisted, try again in"), text
    # Too early: still 451; another sender is another triplet.
    assert rcpt(s, "127.0.1.2", "a@mail.test")[0] == 451
    assert rcpt(s, "127.0.1.3", "other@mail.test")[0] == 451
    time.sleep(DELAY + 0.5)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=30, source_address=("127.0.1.2", 0)) as c:
        c.sendmail("a@mail.test", ["bob@example.test"], "Subject: retried\r\n\r\nhi\r\n")
    assert any(b"Subject: retried" in m for m in s.raw_messages("bob"))
    # The network that retried properly passes at once now, any sender.
    assert rcpt(s, "127.0.1.77", "new@else.test")[0] == 250
    # Another network does not; a trusted one is never greylisted.
    assert rcpt(s, "127.0.2.1", "new@else.test")[0] == 451
    assert rcpt(s, "127.0.9.1", "new@else.test")[0] == 250


def test_state_survives_a_restart(greylisting):
    s = greylisting()
    assert rcpt(s, "127.0.3.1", "a@mail.test")[0] == 451
    s.stop()
    time.sleep(DELAY + 0.5)
    s = greylisting()
    # The first try was kept: the retry after the delay is accepted.
    assert rcpt(s, "127.0.3.1", "a@mail.test")[0] == 250
    # Written out while running too (not only at shutdown).
    assert rcpt(s, "127.0.4.1", "a@mail.test")[0] == 451
    path = s.dir / "data/greylist"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and path.read_text().count("\n") < 2:
        time.sleep(0.1)
    assert path.read_text().count("t ") >= 1
    assert "c 127.0.3.0 " in path.read_text()


def test_spf_for_a_domain_that_passed_dmarc_is_not_greylisted(tmp_path):
    """A domain whose mail passed DMARC here is kept; later mail that
    passes SPF for it is not greylisted, from any network. SPF alone, for
    a domain never seen passing DMARC, is greylisted as before."""
    from test_dns import UNBOUND, Unbound
    from test_inbound_checks import txt
    if not os.path.exists(UNBOUND):
        pytest.skip("unbound is not installed")
    records = {"ok.test": "v=spf1 ip4:127.0.0.0/8 -all",
               "_dmarc.ok.test": "v=DMARC1; p=reject",
               "plain.test": "v=spf1 ip4:127.0.0.0/8 -all",
               "narrow.test": "v=spf1 ip4:127.0.5.1 -all",
               "_dmarc.narrow.test": "v=DMARC1; p=none"}
    zone = "\n".join([f'    local-zone: "{z}." static' for z in ("ok.test", "plain.test", "narrow.test")]
                     + [f"    local-data: '{n}. TXT {txt(v)}'" for n, v in records.items()])
    dns = Unbound(tmp_path, zone)
    s = None
    try:
        s = Server(tmp_path, extra=f"greylist = on\ngreylist_delay = {DELAY}s\n"
                                   f"dns_servers = 127.0.0.1:{dns.port}")
        message = "From: a@{d}\r\nTo: bob@example.test\r\nSubject: {d}\r\n\r\nhi\r\n"
        # The first message from ok.test is greylisted, retried, and
        # passes DMARC (SPF aligned): ok.test is kept.
        assert rcpt(s, "127.0.5.1", "a@ok.test")[0] == 451
        assert rcpt(s, "127.0.5.1", "a@narrow.test")[0] == 451
        time.sleep(DELAY + 0.5)
        for d in ("ok.test", "narrow.test"):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30, source_address=("127.0.5.1", 0)) as c:
                c.sendmail(f"a@{d}", ["bob@example.test"], message.format(d=d))
        stored = b"\n".join(s.raw_messages("bob"))
        assert b"dmarc=pass" in stored and b"header.from=ok.test" in stored, stored
        # From another network: SPF passes for ok.test, which passed
        # DMARC: no greylisting, even for a new sender and recipient.
        assert rcpt(s, "127.0.6.1", "other@ok.test")[0] == 250
        assert rcpt(s, "127.0.6.1", "other@ok.test", to="alice@example.test")[0] == 250
        # SPF passes for plain.test too, but it never passed DMARC here.
        assert rcpt(s, "127.0.6.1", "a@plain.test")[0] == 451
        # narrow.test passed DMARC, but SPF fails from this network.
        assert rcpt(s, "127.0.7.1", "a@narrow.test")[0] == 451
    finally:
        if s:
            s.stop()
        dns.stop()
    assert s.proc.returncode == 0, "".join(s.log)
