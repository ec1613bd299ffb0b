"""Sending mail out, against real peers on loopback: a private Unbound
holds the test zones (MX with two hosts, implicit MX, null MX, no such
domain, the DKIM key), and the receiving servers are scripted sinks on
127.0.0.2 and 127.0.0.3 (accepting, greylisting, refusing, dropping,
tarpitting). Every message the sender gets back is parsed by Python's
email package."""

import email
import email.policy
import os
import signal
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ALIASES, BINARY, Server
from sink import Sink
from test_dns import UNBOUND, Unbound
from test_dkim import VERIFY, keygen
from test_memory import status_kib

ZONES = """
    local-zone: "far.test." static
    local-data: "far.test. MX 10 mx1.far.test."
    local-data: "far.test. MX 20 mx2.far.test."
    local-data: "mx1.far.test. A 127.0.0.2"
    local-data: "mx2.far.test. A 127.0.0.3"
    local-zone: "implicit.test." static
    local-data: "implicit.test. A 127.0.0.2"
    local-zone: "nullmx.test." static
    local-data: "nullmx.test. MX 0 ."
    local-zone: "gone.test." static
"""

pytestmark = pytest.mark.skipif(not Path(UNBOUND).exists(), reason="unbound not installed")


def wait_for(check, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class World:
    """Unbound with the test zones, two MX sinks on one port, and a
    postling that sends to them."""

    def __init__(self, tmp: Path, mx1="accept", mx2="accept", extra="", zones="", aliases=None):
        self.dns = Unbound(tmp, ZONES + zones)
        self.sinks = []
        try:
            self.mx1 = Sink("127.0.0.2", 0, mx1)
            self.sinks.append(self.mx1)
            self.mx2 = Sink("127.0.0.3", self.mx1.port, mx2)
            self.sinks.append(self.mx2)
            self.tmp = tmp
            self.extra = f"""
                trusted_networks = 127.0.0.0/8
                dns_servers = 127.0.0.1:{self.dns.port}
                outbound_port = {self.mx1.port}
                queue_retry = 1s
                queue_warn_after = 0
                {extra}
            """
            self.server = Server(tmp, extra=self.extra,
                                 **({"aliases": aliases} if aliases else {}))
        except Exception:
            self.stop()
            raise

    def send(self, to, body="Subject: hello\r\n\r\nHello there.\r\n", sender="alice@example.test"):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=30) as c:
            c.sendmail(sender, to, body)

    def stop(self):
        if hasattr(self, "server"):
            self.server.stop()
        for s in self.sinks:
            s.stop()
        self.dns.stop()


@pytest.fixture
def world_factory(tmp_path):
    made = []

    def make(**kw):
        w = World(tmp_path, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def queue_empty(server):
    new = server.dir / "data/queue/new"
    return not new.exists() or not any(new.iterdir())


def bounces(server, user="alice"):
    return [m for m in server.messages(user)
            if m.get_content_type() == "multipart/report"]


def test_delivered_byte_for_byte_with_received_and_dkim(world_factory, tmp_path):
    record = keygen(tmp_path, "sel")
    w = world_factory(extra="dkim_keys = example.test:sel:sel.pem", zones=record + "\n")
    body = ("From: Alice <alice@example.test>\r\nTo: bob@far.test\r\n"
            "Subject: outbound\r\nMessage-ID: <o1@example.test>\r\n"
            "Date: Sat, 28 Nov 2026 00:00:00 +0000\r\n\r\n"
            "Line one.\r\n.starts with a dot\r\n..two dots\r\n\r\nlast line\r\n")
    w.send(["bob@far.test", "carol@far.test"], body)
    got = wait_for(lambda: w.mx1.messages, what="delivery to mx1")
    mail_from, rcpts, data = got[0]
    assert mail_from == "alice@example.test"
    assert rcpts == ["bob@far.test", "carol@far.test"], "one transaction for both"
    text = data.decode()
    head, _, rest = text.partition("\r\n\r\n")
    # Our trace header, no Return-Path or Delivered-To (those are the
    # final delivery's), then the message exactly as sent.
    assert head.startswith("DKIM-Signature: ")
    assert "Received: from " in head and "by mx.example.test (postling)" in head
    assert "Return-Path" not in head and "Delivered-To" not in head
    assert head.endswith(body.split("\r\n\r\n", 1)[0])
    assert rest == "Line one.\r\n.starts with a dot\r\n..two dots\r\n\r\nlast line\r\n"
    # The signature holds for an independent verifier.
    out = subprocess.run(["/usr/bin/python3", "-c", VERIFY, str(w.dns.port)], input=data,
                         capture_output=True, timeout=60)
    assert out.stdout.decode().strip() == "pass", out.stdout + out.stderr
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")
    assert w.server.wait_logged("relay=mx1.far.test[127.0.0.2]:")
    line = next(l for l in w.server.log if "outbound id=" in l and "result=sent" in l)
    assert "tls=none" in line and 'reply="250 2.0.0 queued as S1"' in line, line
    assert w.mx2.connections == 0


def test_first_mx_down_goes_to_the_second(world_factory):
    w = world_factory(mx1="drop")
    w.send(["bob@far.test"])
    got = wait_for(lambda: w.mx2.messages, what="delivery to mx2")
    assert got[0][1] == ["bob@far.test"]
    assert w.mx1.connections >= 1
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")


def test_greylisted_then_delivered_on_the_retry(world_factory):
    w = world_factory(mx1="tempfail", mx2="tempfail")
    w.send(["bob@far.test"])
    assert w.server.wait_logged("result=deferred", 20)
    assert not queue_empty(w.server)
    listed = subprocess.run([BINARY, "queue", "list", "-c", str(w.server.conf)],
                            capture_output=True, text=True, timeout=30).stdout
    assert "<bob@far.test> deferred: 451 4.7.1 greylisted" in listed, listed
    w.mx1.mode = "accept"
    got = wait_for(lambda: w.mx1.messages, timeout=30, what="the retry")
    assert got[0][1] == ["bob@far.test"]
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")
    # The sender heard nothing: it was delivered in time.
    assert not bounces(w.server)


def test_refused_recipient_bounces_to_the_local_sender(world_factory):
    w = world_factory(mx1="reject")
    w.send(["nobody@far.test"], "Subject: will bounce\r\nFrom: alice@example.test\r\n\r\nhi\r\n")
    dsn = wait_for(lambda: bounces(w.server), what="the bounce")[0]
    assert dsn["From"] == "Mail Delivery System <MAILER-DAEMON@mx.example.test>"
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert "nobody@far.test" in parts[0].get_content()
    status = parts[1].as_string()
    assert "Final-Recipient: rfc822; nobody@far.test" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user here" in status
    assert "Subject: will bounce" in parts[2].get_content()
    raw = w.server.raw_messages("alice")[0]
    assert raw.startswith(b"Return-Path: <>\n")
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")
    assert w.mx2.connections == 0, "a 5xx is final: no second MX"


@pytest.mark.parametrize("domain,status", [("nullmx.test", "5.1.10"), ("gone.test", "5.1.2")])
def test_null_mx_and_no_such_domain_bounce_at_once(world_factory, domain, status):
    w = world_factory()
    w.send([f"x@{domain}"])
    dsn = wait_for(lambda: bounces(w.server), what="the bounce")[0]
    assert f"Status: {status}" in list(dsn.iter_parts())[1].as_string()
    assert w.mx1.connections == 0 and w.mx2.connections == 0


def test_implicit_mx(world_factory):
    w = world_factory()
    w.send(["eve@implicit.test"])
    got = wait_for(lambda: w.mx1.messages, what="delivery to the domain's own address")
    assert got[0][1] == ["eve@implicit.test"]


def test_dns_timeout_defers(tmp_path):
    s = Server(tmp_path, extra="""
        trusted_networks = 127.0.0.0/8
        queue_retry = 1h
    """)  # dns_servers is a closed port
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("alice@example.test", ["bob@far.test"], "Subject: x\r\n\r\nx\r\n")
        assert s.wait_logged("result=deferred", 30), "".join(s.log[-20:])
        assert s.logged("MX lookup failed")
        assert not queue_empty(s) and not bounces(s)
    finally:
        s.stop()


def test_tarpit_does_not_hold_up_other_mail(world_factory):
    w = world_factory(mx1="tarpit", mx2="tarpit", extra="outbound_timeout = 3s\nqueue_retry = 1h")
    w.send(["slow@far.test"])
    w.send(["eve@implicit.test"])  # implicit.test is 127.0.0.2 too: tarpit
    # Both connect, both are given up after the timeout, nothing else
    # waits for them, and the server stays responsive meanwhile.
    with smtplib.SMTP("127.0.0.1", w.server.port, timeout=5) as c:
        assert c.noop()[0] == 250
    assert w.server.wait_logged("timeout after 3 s", 20)
    wait_for(lambda: sum(1 for l in w.server.log if "result=deferred" in l) >= 2, 20,
             "both deferred")


def test_kill_during_delivery_loses_nothing(world_factory, tmp_path):
    w = world_factory(mx1="tarpit", mx2="tarpit", extra="outbound_timeout = 60s")
    for i in range(5):
        w.send([f"r{i}@far.test"], f"Subject: m{i}\r\n\r\nbody {i}\r\n")
    wait_for(lambda: w.mx1.connections >= 2, what="deliveries under way")
    w.server.proc.send_signal(signal.SIGKILL)
    w.server.proc.wait(10)
    assert len(w.server.queued()) == 5
    # Start again with receivers that answer: all five arrive.
    port = w.mx1.port
    w.mx1.stop()
    w.mx2.stop()
    w.mx1 = Sink("127.0.0.2", port, "accept")
    w.mx2 = Sink("127.0.0.3", port, "accept")
    w.sinks += [w.mx1, w.mx2]
    w.server = Server(tmp_path, extra=w.extra.replace("60s", "5s"))
    wait_for(lambda: queue_empty(w.server), 60, "the queue to empty")
    got = sorted(r for m in w.mx1.messages + w.mx2.messages for r in m[1])
    assert got == [f"r{i}@far.test" for i in range(5)]


def test_queue_flush_retries_now(world_factory):
    w = world_factory(mx1="tempfail", mx2="tempfail", extra="queue_retry = 1h")
    w.send(["bob@far.test"])
    assert w.server.wait_logged("result=deferred", 20)
    w.mx1.mode = "accept"
    time.sleep(1)
    assert not w.mx1.messages, "not before its time"
    out = subprocess.run([BINARY, "queue", "flush", "-c", str(w.server.conf)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: w.mx1.messages, what="delivery after the flush")
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")


def make_ca_and_leaf(folder: Path, names: str = "DNS:localhost,IP:127.0.0.1"):
    """A test CA and a certificate it signed for `names`."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=postling test CA",
        "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))
    run("openssl", "req", *ec, "-subj", "/CN=localhost",
        "-keyout", str(folder / "leaf.key"), "-out", str(folder / "leaf.csr"))
    ext = folder / "leaf.ext"
    ext.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(folder / "leaf.csr"), "-CA", str(folder / "ca.pem"),
        "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(folder / "leaf.pem"))
    return folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"


def start_smarthost(tmp_path: Path):
    """A second postling as the smarthost: submission on STARTTLS and
    implicit TLS with a certificate from a test CA, alice may log in with
    "secret pass". Returns (server, the CA's certificate)."""
    from conftest import add_user
    relay_dir = tmp_path / "smarthost"
    relay_dir.mkdir()
    ca, cert, key = make_ca_and_leaf(tmp_path)
    conf = relay_dir / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (relay_dir / "users").write_text("")
    add_user(conf, "alice@example.test", "secret pass")
    add_user(conf, "bob@example.test", "bob pass")
    relay = Server(relay_dir, users=(relay_dir / "users").read_text(), extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_submission = 127.0.0.1:0
        listen_submissions = 127.0.0.1:0
    """)
    return relay, ca


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_smarthost_with_auth_over_verified_tls(tmp_path, monkeypatch, mode):
    relay, ca = start_smarthost(tmp_path)
    sender_dir = tmp_path / "sender"
    sender_dir.mkdir()
    auth = sender_dir / "auth"
    auth.write_text("alice@example.test secret pass\n")
    auth.chmod(0o640)
    port = relay.ports["submission" if mode == "starttls" else "submissions"]
    extra = f"""
        trusted_networks = 127.0.0.0/8
        smarthost = 127.0.0.1:{port}
        smarthost_tls = {mode}
        smarthost_auth_file = auth
    """
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    try:
        # A password file others can read is refused at start, and by check.
        with pytest.raises(RuntimeError, match="readable by others"):
            Server(sender_dir, extra=extra)
        out = subprocess.run([BINARY, "check", "-c", str(sender_dir / "postling.conf")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "readable by others" in out.stderr, out.stderr
        auth.chmod(0o600)
        s = Server(sender_dir, extra=extra)
        try:
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.sendmail("alice@example.test", ["friend@far.test"],
                           "Subject: via smarthost\r\n\r\nhi\r\n")
            wait_for(lambda: relay.queued(), what="the smarthost to take it")
            assert relay.queued()[0].startswith("from <alice@example.test>\nto <friend@far.test>\n")
            if mode == "starttls":
                # (Implicit TLS has no STARTTLS line; the result line
                # below says verified for both.)
                assert s.wait_logged("verify=verified")
            assert s.wait_logged("result=sent")
            line = next(l for l in s.log if "result=sent" in l)
            assert "tls=verified" in line and f"relay=127.0.0.1[127.0.0.1]:{port}" in line, line
            assert relay.wait_logged("alice@example.test")
        finally:
            s.stop()
    finally:
        relay.stop()


def test_forwarding_alias_rewrites_the_sender_and_takes_bounces_back(world_factory):
    w = world_factory(
        extra="trusted_networks =",  # the world outside: no relaying
        zones='    local-zone: "sender.test." static\n'
              '    local-data: "sender.test. MX 10 mx2.far.test."\n',
        aliases=ALIASES + "both@example.test: alice@example.test, Friend@far.test\n")
    w.send(["both@example.test"], "Subject: passing through\r\n\r\nhi\r\n",
           sender="someone@sender.test")
    # The local copy, and the forwarded one with an SRS sender.
    assert [m["Subject"] for m in w.server.messages("alice")] == ["passing through"]
    got = wait_for(lambda: w.mx1.messages, what="the forwarded copy")
    srs, rcpts, data = got[0]
    assert rcpts == ["friend@far.test"]
    assert srs.startswith("SRS0=") and srs.endswith("=sender.test=someone@example.test"), srs
    assert len(srs.split("=")[1]) == 8, "40 bits of hash"
    assert b"Subject: passing through" in data and b"DKIM-Signature" not in data
    # Its bounce comes back to the SRS address (from anywhere) and goes on
    # to the original sender; a forged one is refused.
    with smtplib.SMTP("127.0.0.1", w.server.port, timeout=30) as c:
        c.ehlo("far.test")
        assert c.mail("<>")[0] == 250
        forged = srs.replace("=sender.test=", "=other.test=")
        code, text = c.rcpt(forged)
        assert code == 550 and b"invalid or expired SRS" in text, text
        assert c.rcpt(srs.lower())[0] == 250
        assert c.data(b"Subject: Undelivered\r\n\r\nno such user\r\n")[0] == 250
        # A UTF-8 local part across the SRS0= prefix: refused, no crash.
        c.command_encoding = "utf-8"
        assert c.docmd("MAIL", "FROM:<> SMTPUTF8")[0] == 250
        code, text = c.docmd("RCPT", "TO:<SRS0\u00e9=x=y=z@example.test>")
        assert code == 550 and b"no such user" in text, (code, text)
        assert c.noop()[0] == 250
    back = wait_for(lambda: w.mx2.messages, what="the bounce sent on")
    assert back[0][0] == "" and back[0][1] == ["someone@sender.test"]
    assert b"Subject: Undelivered" in back[0][2]
    # The secret is kept for the next start.
    secret = w.server.dir / "data/postling-srs-secret"
    assert secret.stat().st_mode & 0o077 == 0 and len(secret.read_bytes()) == 32


def test_delay_notice_once_then_expiry_bounce(world_factory):
    w = world_factory(mx1="tempfail", mx2="tempfail",
                      extra="queue_warn_after = 1s\nqueue_max_age = 4s")
    w.send(["late@far.test"], "Subject: slow one\r\nFrom: alice@example.test\r\n\r\nhi\r\n")
    delayed = wait_for(lambda: bounces(w.server), what="the delay notice")[0]
    parts = list(delayed.iter_parts())
    assert delayed["Subject"] == "Delayed Mail (still being retried)"
    assert "Action: delayed" in parts[1].as_string()
    assert "Status: 4.7.1" in parts[1].as_string()
    assert "Will-Retry-Until: " in parts[1].as_string()
    failed = wait_for(lambda: len(bounces(w.server)) >= 2 and bounces(w.server), 30,
                      "the expiry bounce")
    subjects = sorted(m["Subject"] for m in failed)
    assert subjects == ["Delayed Mail (still being retried)",
                        "Undelivered Mail Returned to Sender"], subjects
    final = next(m for m in failed if m["Subject"].startswith("Undelivered"))
    status = list(final.iter_parts())[1].as_string()
    assert "Action: failed" in status and "Status: 4.4.7" in status
    assert "greylisted" in status  # the last reply is kept
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")
    time.sleep(1.5)
    assert len(bounces(w.server)) == 2, "one delay notice only"


def test_double_bounce_is_logged_and_mailed_only_when_asked(world_factory):
    """A bounce the sender's server refuses is a double bounce: by
    default logged and not mailed (Postfix's default), with
    notify_double_bounce = yes mailed to the postmaster."""
    w = world_factory(mx1="reject", aliases=ALIASES + "postmaster@example.test: bob@example.test\n")
    w.send(["nobody@far.test"], "Subject: round trip\r\n\r\nhi\r\n", sender="someone@far.test")
    assert w.server.wait_logged("double bounce, not mailed", 30), "".join(w.server.log[-20:])
    assert w.server.logged('to="someone@far.test"')
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")
    assert not bounces(w.server, "bob") and not bounces(w.server, "alice")


def test_double_bounce_goes_to_the_postmaster_when_asked(world_factory):
    w = world_factory(mx1="reject", aliases=ALIASES + "postmaster@example.test: bob@example.test\n",
                      extra="notify_double_bounce = yes")
    # A remote sender whose own server refuses the bounce.
    w.send(["nobody@far.test"], "Subject: round trip\r\n\r\nhi\r\n", sender="someone@far.test")
    double = wait_for(lambda: bounces(w.server, "bob"), what="the postmaster's copy")[0]
    status = list(double.iter_parts())[1].as_string()
    assert "Final-Recipient: rfc822; someone@far.test" in status
    assert "Status: 5.1.1" in status
    assert not bounces(w.server, "alice")
    wait_for(lambda: queue_empty(w.server), what="the queue to empty")


def test_mx_answer_too_big_for_udp_comes_over_tcp(world_factory):
    many = "".join(f'    local-data: "big.test. MX {i} mx{i}-with-a-rather-long-host-name.far.test."\n'
                   for i in range(10, 40))
    many += '    local-data: "big.test. MX 5 mx1.far.test."\n'
    w = world_factory(zones='    local-zone: "big.test." static\n' + many)
    w.send(["someone@big.test"])
    got = wait_for(lambda: w.mx1.messages, what="delivery to the best MX")
    assert got[0][1] == ["someone@big.test"]


def test_sendmail_t_from_a_shell_goes_out(world_factory):
    w = world_factory()
    script = (f"printf 'To: bob@far.test\\nSubject: from cron\\n\\nnightly\\n' | "
              f"{BINARY} sendmail -c {w.server.conf} -t -f cron@example.test")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = wait_for(lambda: w.mx1.messages, what="the message from sendmail")
    assert got[0][0] == "cron@example.test" and got[0][1] == ["bob@far.test"]
    assert b"Subject: from cron" in got[0][2]


def test_bounce_to_a_remote_sender_is_signed(world_factory, tmp_path):
    record = keygen(tmp_path, "sel")
    w = world_factory(mx1="reject", extra="dkim_keys = example.test:sel:sel.pem",
                      zones=record + "\n" + '    local-zone: "sender.test." static\n'
                      '    local-data: "sender.test. MX 10 mx2.far.test."\n')
    w.send(["nobody@far.test"], "Subject: goes nowhere\r\n\r\nhi\r\n", sender="someone@sender.test")
    got = wait_for(lambda: w.mx2.messages, what="the bounce to the remote sender")
    mail_from, rcpts, data = got[0]
    assert mail_from == "" and rcpts == ["someone@sender.test"]
    assert b"From: Mail Delivery System <MAILER-DAEMON@mx.example.test>" in data
    assert b"d=example.test;" in data
    out = subprocess.run(["/usr/bin/python3", "-c", VERIFY, str(w.dns.port)], input=data,
                         capture_output=True, timeout=60)
    assert out.stdout.decode().strip() == "pass", out.stdout + out.stderr


def test_ipv6_mx_is_tried_first(world_factory):
    w = world_factory(zones='    local-zone: "six.test." static\n'
                            '    local-data: "six.test. MX 10 mx.six.test."\n'
                            '    local-data: "mx.six.test. AAAA ::1"\n'
                            '    local-data: "mx.six.test. A 127.0.0.2"\n')
    six = Sink("::1", w.mx1.port, "accept")
    w.sinks.append(six)
    w.send(["someone@six.test"])
    got = wait_for(lambda: six.messages, what="delivery over IPv6")
    assert got[0][1] == ["someone@six.test"]
    assert not w.mx1.messages
    assert w.server.wait_logged(f"relay=mx.six.test[::1]:{w.mx1.port}")


def test_sigterm_lets_a_transaction_finish_and_records_it(world_factory):
    w = world_factory(mx1="slow")
    w.send(["bob@far.test"])
    wait_for(lambda: w.mx1.connections >= 1, what="the delivery to start")
    time.sleep(0.5)  # the data is out; the receiver takes 2 s to answer
    w.server.proc.send_signal(signal.SIGTERM)
    assert w.server.proc.wait(30) == 0
    assert [m[1] for m in w.mx1.messages] == [["bob@far.test"]]
    assert queue_empty(w.server), "recorded before the server stopped"
    assert w.server.logged("result=sent")


def test_a_receiver_that_talks_without_end_holds_up_nothing(world_factory):
    w = world_factory(mx1="flood", mx2="flood", extra="queue_retry = 1h")
    before = status_kib(w.server.proc.pid, "VmRSS")
    w.send(["bob@far.test"])
    assert w.server.wait_logged("result=deferred", 30)
    # The loop went on serving, and did not keep what the peers said.
    with smtplib.SMTP("127.0.0.1", w.server.port, timeout=5) as c:
        assert c.noop()[0] == 250
    assert status_kib(w.server.proc.pid, "VmRSS") - before < 16 * 1024
    line = next(l for l in w.server.log if "result=deferred" in l)
    assert "250 noise" in line, line


def test_etrn_runs_the_queue_for_trusted_clients_only(world_factory, tmp_path):
    w = world_factory(mx1="tempfail", mx2="tempfail", extra="queue_retry = 1h")
    w.send(["bob@far.test"])
    assert w.server.wait_logged("result=deferred", 20)
    w.mx1.mode = "accept"
    with smtplib.SMTP("127.0.0.1", w.server.port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.docmd("ETRN", "far.test")[0] == 250
    wait_for(lambda: w.mx1.messages, what="delivery after ETRN")
    # Anyone else: 459, and nothing is run.
    other = tmp_path / "untrusted"
    other.mkdir()
    s = Server(other, extra="trusted_networks =")
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.ehlo("client.test")
            code, text = c.docmd("ETRN", "far.test")
            assert code == 459 and b"trusted" in text, (code, text)
        assert not s.logged("queue flush")
    finally:
        s.stop()


def test_etrn_during_an_attempt_tries_that_message_again_after_it(world_factory):
    """An ETRN that comes while a message is being tried (the run passes
    it by) has it tried again as soon as that attempt is recorded, not
    at its next retry an hour later."""
    w = world_factory(mx1="slowfail", mx2="slowfail", extra="queue_retry = 1h")
    w.send(["bob@far.test"])
    wait_for(lambda: w.mx1.connections + w.mx2.connections, what="an attempt under way")
    with smtplib.SMTP("127.0.0.1", w.server.port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.docmd("ETRN", "far.test")[0] == 250
    w.mx1.mode = w.mx2.mode = "accept"
    assert w.server.wait_logged("result=deferred", 20)
    wait_for(lambda: w.mx1.messages or w.mx2.messages, timeout=30,
             what="delivery once the attempt under way was recorded")


def test_smarthost_certificate_the_ca_store_does_not_vouch_for(tmp_path, monkeypatch):
    """With smarthost_tls the certificate must check out: against another
    CA the delivery is deferred and the password never sent."""
    relay, _ = start_smarthost(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _, _ = make_ca_and_leaf(other)
    sender_dir = tmp_path / "sender"
    sender_dir.mkdir()
    auth = sender_dir / "auth"
    auth.write_text("alice@example.test secret pass\n")
    auth.chmod(0o600)
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    try:
        s = Server(sender_dir, extra=f"""
            trusted_networks = 127.0.0.0/8
            smarthost = 127.0.0.1:{relay.ports["submission"]}
            smarthost_auth_file = auth
            queue_retry = 1h
        """)
        try:
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.sendmail("alice@example.test", ["friend@far.test"], "Subject: x\r\n\r\nx\r\n")
            assert s.wait_logged("result=deferred", 20)
            assert not relay.queued()
            assert not relay.logged("auth ok") and not relay.logged("auth failed")
        finally:
            s.stop()
    finally:
        relay.stop()


def test_a_forward_refused_bounces_to_the_original_sender(world_factory):
    # far.test (mx1) refuses; sender.test's MX is mx2.
    w = world_factory(
        mx1="reject", extra="trusted_networks =",
        zones='    local-zone: "sender.test." static\n'
              '    local-data: "sender.test. MX 10 mx2.far.test."\n',
        aliases=ALIASES + "fwd@example.test: friend@far.test\n")
    w.send(["fwd@example.test"], "Subject: passing through\r\n\r\nhi\r\n",
           sender="someone@sender.test")
    # The bounce goes to the SRS sender, which is ours: it is decoded and
    # the notice goes on to the original sender.
    got = wait_for(lambda: w.mx2.messages, what="the bounce to the original sender")
    mail_from, rcpts, data = got[0]
    assert mail_from == "" and rcpts == ["someone@sender.test"]
    assert b"Final-Recipient: rfc822; friend@far.test" in data
    assert b"Subject: passing through" in data


def test_guessing_srs_addresses_locks_the_client_out(tmp_path):
    """Each refused SRS address counts as a failure in the per-client
    limiter: past auth_failure_limit the connection gets 421 and the
    address is refused at connect, long before a hash could be found."""
    s = Server(tmp_path, extra="auth_failure_limit = 3")
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.ehlo("far.test")
            assert c.mail("<>")[0] == 250
            for guess in ("AAAAAAAA", "AAAAAAAB", "AAAAAAAC"):
                code, text = c.rcpt(f"SRS0={guess}=AB=far.test=x@example.test")
                assert code == 550 and b"invalid or expired SRS" in text, text
            # The third refusal is followed by the 421 and the close.
            code, text = c.getreply()
            assert code == 421 and b"Too many failures" in text, (code, text)
            c.close()
        assert s.wait_logged("locked out: too many invalid SRS addresses")
        with pytest.raises((smtplib.SMTPException, ConnectionError)):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.ehlo("far.test")
                c.mail("<>")
    finally:
        s.stop()
