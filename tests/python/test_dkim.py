"""DKIM signing of the mail we queue, checked by an independent
verifier: dkimpy (Debian's python3-dkim, run by the system's python3)
looks the key up in a private Unbound zone holding exactly the TXT
record `postling dkim keygen` printed. RSA (made by openssl) and
Ed25519 (RFC 8463)."""

import re
import smtplib
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY, Server, users_with_password
from test_dns import UNBOUND, Unbound

VERIFY = r"""
import sys, dkim, dns.resolver
port = int(sys.argv[1])
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = port
def txt(name, timeout=5):
    ans = r.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
    return b"".join(b"".join(a.strings) for a in ans)
msg = sys.stdin.buffer.read()
ok = dkim.verify(msg, dnsfunc=txt)
print("pass" if ok else "fail")
"""

pytestmark = pytest.mark.skipif(
    not Path(UNBOUND).exists() or not Path("/usr/bin/dkimverify").exists(),
    reason="unbound or python3-dkim not installed")


def keygen(tmp: Path, selector: str, *flags) -> str:
    out = subprocess.run([BINARY, "dkim", "keygen", "example.test", selector, *flags,
                          "-o", str(tmp / f"{selector}.pem")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp / f"{selector}.pem").stat().st_mode & 0o077 == 0
    strings = re.findall(r'"[^"]*"', out.stdout.splitlines()[0])
    return f'    local-data: \'{selector}._domainkey.example.test. TXT {" ".join(strings)}\''


@pytest.mark.parametrize("flags", [(), ("--ed25519",)], ids=["rsa", "ed25519"])
def test_queued_mail_is_signed_and_verifies(tmp_path, flags):
    record = keygen(tmp_path, "sel", *flags)
    dns = Unbound(tmp_path, record)
    try:
        # Sending fails (nothing listens at the smarthost): the queue file
        # stays to be read. test_outbound checks signatures on the wire.
        s = Server(tmp_path, extra=f"""
            trusted_networks = 127.0.0.0/8
            dkim_keys = example.test:sel:sel.pem
            smarthost = 127.0.0.1:1
            queue_retry = 1h
            dns_servers = 127.0.0.1:{dns.port}
        """)
        try:
            body = "Hello,\r\n\r\nthe  report   is attached.  \r\n\r\n\r\n"
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.sendmail("cron@example.test", ["admin@elsewhere.test"],
                           "From: Cron <cron@example.test>\r\nTo: admin@elsewhere.test\r\n"
                           "Subject: nightly\r\n report\r\nDate: Fri, 27 Nov 2026 23:00:00 +0000\r\n"
                           f"Message-ID: <n1@example.test>\r\n\r\n{body}")
            queued = s.queued()[0]
            envelope, message = queued.split("\n\n", 1)
            assert message.startswith("DKIM-Signature: v=1; a=" + ("ed25519" if flags else "rsa") + "-sha256;")
            assert "h=from:from:subject:date:to:message-id;" in message
            wire = message.replace("\n", "\r\n").encode()
            out = subprocess.run(["/usr/bin/python3", "-c", VERIFY, str(dns.port)], input=wire,
                                 capture_output=True, timeout=60)
            assert out.stdout.decode().strip() == "pass", out.stdout + out.stderr
            # A changed body no longer verifies: the check is real.
            tampered = wire.replace(b"report   is", b"report was")
            out = subprocess.run(["/usr/bin/python3", "-c", VERIFY, str(dns.port)], input=tampered,
                                 capture_output=True, timeout=60)
            assert out.stdout.decode().strip() == "fail", out.stdout + out.stderr
        finally:
            s.stop()
    finally:
        dns.stop()


def test_other_domains_are_not_signed_and_bad_keys_stop_the_start(tmp_path):
    keygen(tmp_path, "sel", "--ed25519")
    s = Server(tmp_path, extra="trusted_networks = 127.0.0.0/8\ndkim_keys = example.test:sel:sel.pem")
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("someone@elsewhere.test", ["admin@other.test"],
                       "From: someone@elsewhere.test\r\nSubject: x\r\n\r\nhi\r\n")
        assert "DKIM-Signature" not in s.queued()[0]
    finally:
        s.stop()
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    conf = tmp_path / "bad.conf"
    conf.write_text(s.conf.read_text().replace("sel.pem", "bad.pem"))
    out = subprocess.run([BINARY, "check", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "dkim_keys" in out.stderr, out.stderr


def test_a_logged_in_user_gets_only_their_own_from_signed(tmp_path):
    """Our signature vouches for From:. A user sending as themselves (or
    an alias of theirs) is signed; the same user writing another user's
    address in From: is not."""
    keygen(tmp_path, "sel")
    users = users_with_password(tmp_path, "dkim-pw-1")
    s = Server(tmp_path, users=users, extra="listen_submission = 127.0.0.1:0\n"
               "dkim_keys = example.test:sel:sel.pem\nsmarthost = 127.0.0.1:1\nqueue_retry = 1h",
               aliases="sales@example.test: alice@example.test\n")
    try:
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30) as c:
            c.login("alice@example.test", "dkim-pw-1")
            for frm, subject in [("alice@example.test", "own"), ("Sales <sales@example.test>", "alias"),
                                 ("bob@example.test", "borrowed"),
                                 ("alice@example.test, bob@example.test", "shared")]:
                c.sendmail("alice@example.test", ["far@elsewhere.test"],
                           f"From: {frm}\r\nSubject: {subject}\r\n\r\nx\r\n")
        signed = {q.split("Subject: ")[1].split("\n")[0]: "DKIM-Signature:" in q for q in s.queued()}
        assert signed == {"own": True, "alias": True, "borrowed": False, "shared": False}, signed
    finally:
        s.stop()
