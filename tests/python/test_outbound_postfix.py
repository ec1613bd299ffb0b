"""Sending mail to real receiving servers on loopback: a private
instance of Debian's Postfix with STARTTLS (its certificate signed by a
test CA that SSL_CERT_FILE names, so our check says `verified`), and
Postfix's smtp-sink."""

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import Server
from peers import (UNBOUND, Unbound, free_port_on, start_postfix, stop_postfix,
                   wait_port_on)
from test_outbound import make_ca_and_leaf, queue_empty, wait_for

pytestmark = pytest.mark.skipif(
    not Path(UNBOUND).exists() or not shutil.which("postfix") or not shutil.which("smtp-sink"),
    reason="unbound or postfix not installed")


class PrivatePostfix:
    """Postfix on 127.0.0.4, STARTTLS offered, pf.test into a Maildir."""

    def __init__(self, base: Path, port: int, cert: Path, key: Path):
        self.base = base
        (base / "vmail").mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(base / "vmail", owner.pw_uid, owner.pw_gid)
        (base / "vmailbox").write_text("bob@pf.test pf.test/bob/\n")
        self.conf = start_postfix(base, f"127.0.0.4:{port}", f"""
myhostname = mx.pf.test
virtual_mailbox_domains = pf.test
virtual_mailbox_base = {base}/vmail
virtual_mailbox_maps = hash:{base}/vmailbox
virtual_uid_maps = static:{owner.pw_uid}
virtual_gid_maps = static:{owner.pw_gid}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
""", maps=[base / "vmailbox"])

    def delivered(self):
        new = self.base / "vmail/pf.test/bob/new"
        return [p.read_bytes() for p in new.iterdir()] if new.exists() else []

    def stop(self):
        stop_postfix(self.conf)


@pytest.fixture
def base():
    # Postfix's daemons run as user postfix: a folder they may enter.
    folder = Path(tempfile.mkdtemp(prefix="postling-pf-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_to_postfix_over_verified_starttls(base, monkeypatch):
    port = free_port_on("127.0.0.4")
    certs = base / "certs"
    certs.mkdir()
    ca, cert, key = make_ca_and_leaf(certs, "DNS:mx.pf.test")
    for f in certs.iterdir():
        f.chmod(0o644)
    dns = Unbound(base, """
    local-zone: "pf.test." static
    local-data: "pf.test. MX 10 mx.pf.test."
    local-data: "mx.pf.test. A 127.0.0.4"
""")
    postfix = None
    s = None
    try:
        postfix = PrivatePostfix(base, port, cert, key)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        here = base / "postling"
        here.mkdir()
        s = Server(here, extra=f"""
            trusted_networks = 127.0.0.0/8
            dns_servers = 127.0.0.1:{dns.port}
            outbound_port = {port}
        """)
        message = ("From: alice@example.test\r\nTo: bob@pf.test\r\nSubject: to postfix\r\n"
                   "\r\nfirst line\r\n.a dot line\r\n\r\nend\r\n")
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("alice@example.test", ["bob@pf.test"], message)
        got = wait_for(postfix.delivered, 30, "Postfix to store it")[0]
        # Postfix's own trace headers on top (and the Date and Message-ID
        # it adds to mail from its networks), ours, then the message as
        # sent (Postfix stores LF line ends).
        head, _, body = got.partition(b"\n\n")
        assert body == b"first line\n.a dot line\n\nend\n", got
        for field in message.split("\r\n\r\n")[0].split("\r\n"):
            assert field.encode() + b"\n" in head + b"\n", field
        assert b"by mx.pf.test (Postfix) with ESMTPS" in got
        assert b"by mx.example.test (postling)" in got
        wait_for(lambda: queue_empty(s), what="the queue to empty")
        line = next(l for l in s.log if "result=sent" in l)
        assert "tls=verified" in line and f"relay=mx.pf.test[127.0.0.4]:{port}" in line, line
    finally:
        if s:
            s.stop()
        if postfix:
            postfix.stop()
        dns.stop()


def test_many_messages_to_smtp_sink(base):
    port = free_port_on("127.0.0.5")
    # smtp-sink writes as nobody, one file per transaction.
    dumps = base / "dumps"
    dumps.mkdir()
    os.chown(dumps, pwd.getpwnam("nobody").pw_uid, -1)
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", f"{dumps}/m.",
                             f"127.0.0.5:{port}", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port_on("127.0.0.5", port)
    dns = Unbound(base, """
    local-zone: "sink.test." static
    local-data: "sink.test. MX 10 mx.sink.test."
    local-data: "mx.sink.test. A 127.0.0.5"
""")
    s = None
    try:
        here = base / "postling"
        here.mkdir()
        s = Server(here, extra=f"""
            trusted_networks = 127.0.0.0/8
            dns_servers = 127.0.0.1:{dns.port}
            outbound_port = {port}
        """)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            for i in range(40):
                c.sendmail("alice@example.test", [f"user{i}@sink.test"],
                           f"Subject: n{i}\r\n\r\nmessage {i}\r\n")
        wait_for(lambda: queue_empty(s), 60, "the queue to empty")
        texts = [p.read_text(errors="replace") for p in dumps.iterdir()]
        assert len(texts) == 40
        for i in range(40):
            one = [t for t in texts if f"Subject: n{i}\n" in t]
            assert len(one) == 1 and f"X-Rcpt-Args: <user{i}@sink.test>" in one[0], texts[:1]
            assert f"\n\nmessage {i}\n" in one[0], one[0]
        sent = [l for l in s.log if "result=sent" in l]
        assert len(sent) == 40
        # Connections are reused: at most the per-destination limit (2)
        # at once, and far fewer than one per message.
        # (Idle connections are kept 2 s for the next message.)
        def closed():
            lines = [l for l in s.log if "outbound disconnect relay=" in l]
            carried = sum(int(l.split("messages=")[1].split()[0]) for l in lines)
            return lines if carried == 40 else None
        lines = wait_for(closed, 20, "the connections to close")
        assert len(lines) <= 20, lines
    finally:
        if s:
            s.stop()
        sink.terminate()
        sink.wait(10)
        dns.stop()
