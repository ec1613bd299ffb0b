"""ManageSieve (RFC 5804) on listen_managesieve: Debian's sieve-connect
(STARTTLS, AUTHENTICATE PLAIN, upload, list, activate, download,
delete) and raw dialogs for every command, the errors and the limits.
A script uploaded and activated here sorts the next message."""

import base64
import os
import re
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import Server, add_user, make_cert

SIEVE_CONNECT = "/usr/bin/sieve-connect"


@pytest.fixture
def srv(tmp_path):
    cert, key = make_cert(tmp_path)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", "alice pw")
    s = Server(tmp_path, "maildir", users=(tmp_path / "users").read_text(), aliases="", extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_managesieve = 127.0.0.1:0
        auth_failure_limit = 50
    """)
    s.cert = cert
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


class Dialog:
    """A raw ManageSieve connection, TLS once STARTTLS is done."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes):
        self.sock.sendall(data)

    def response(self):
        """Lines up to and including the OK/NO/BYE one; literals read."""
        lines = []
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1)))
                line += self.f.readline()
            lines.append(line)
            if re.match(rb"(OK|NO|BYE)\b", line):
                return lines

    def command(self, data: bytes):
        self.send(data)
        return self.response()

    def starttls(self, cafile):
        assert self.command(b"STARTTLS\r\n")[-1].startswith(b"OK")
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.check_hostname = False
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.example.test")
        self.f = self.sock.makefile("rb")
        return self.response()

    def login(self, user=b"alice@example.test", password=b"alice pw"):
        token = base64.b64encode(b"\0" + user + b"\0" + password)
        return self.command(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')

    def close(self):
        self.sock.close()


def literal(text: bytes) -> bytes:
    return b"{%d+}\r\n" % len(text) + text


def test_raw_dialog_every_command(srv):
    d = Dialog(srv.ports["ManageSieve"])
    greeting = d.response()
    caps = b"".join(greeting)
    assert b'"IMPLEMENTATION" "postling"' in caps and b'"STARTTLS"' in caps
    assert b"fileinto" in caps and b"vacation-seconds" in caps and b'"VERSION" "1.0"' in caps
    # Loopback may log in in clear, as the other protocols allow.
    assert d.command(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO")
    caps = b"".join(d.starttls(srv.cert))
    assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps
    assert d.login(password=b"wrong")[-1].startswith(b"NO")
    assert d.login()[-1].startswith(b"OK")
    assert d.command(b'HAVESPACE "a" 1000\r\n')[-1].startswith(b"OK")
    assert b"QUOTA/MAXSIZE" in d.command(b'HAVESPACE "a" 999999999\r\n')[-1]
    bad = d.command(b'PUTSCRIPT "bad" ' + literal(b'keep;\r\nfileinto "x";\r\n') + b"\r\n")[-1]
    assert bad.startswith(b"NO") and b"line 2" in bad, bad
    assert d.command(b"CHECKSCRIPT " + literal(b"frob;") + b"\r\n")[-1].startswith(b"NO")
    assert d.command(b"CHECKSCRIPT " + literal(b"keep;") + b"\r\n")[-1].startswith(b"OK")
    script = b'require "fileinto";\r\nfileinto "Sorted";\r\n'
    assert d.command(b'PUTSCRIPT "main" ' + literal(script) + b"\r\n")[-1].startswith(b"OK")
    assert d.command(b'PUTSCRIPT "other" ' + literal(b"keep;") + b"\r\n")[-1].startswith(b"OK")
    assert d.command(b'SETACTIVE "main"\r\n')[-1].startswith(b"OK")
    listing = d.command(b"LISTSCRIPTS\r\n")
    assert listing[:2] == [b'"main" ACTIVE\r\n', b'"other"\r\n'], listing
    got = d.command(b'GETSCRIPT "main"\r\n')
    assert got[0] == b"{%d}\r\n" % len(script) + script + b"\r\n", got
    assert b"ACTIVE" in d.command(b'DELETESCRIPT "main"\r\n')[-1]
    assert b"NONEXISTENT" in d.command(b'GETSCRIPT "nope"\r\n')[-1]
    assert b"ALREADYEXISTS" in d.command(b'RENAMESCRIPT "other" "main"\r\n')[-1]
    assert d.command(b'RENAMESCRIPT "main" "renamed"\r\n')[-1].startswith(b"OK")
    assert d.command(b"LISTSCRIPTS\r\n")[0] == b'"other"\r\n'
    assert b'"renamed" ACTIVE' in b"".join(d.command(b"LISTSCRIPTS\r\n"))
    assert d.command(b'DELETESCRIPT "other"\r\n')[-1].startswith(b"OK")
    assert b'TAG "x1"' in d.command(b'NOOP "x1"\r\n')[-1]
    # The active script sorts the next message.
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("f@far.test", ["alice@example.test"], b"Subject: s\r\n\r\nhi\r\n")
    root = srv.mailbox_path("alice")
    assert len(os.listdir(root / ".Sorted/new")) == 1
    assert d.command(b'SETACTIVE ""\r\n')[-1].startswith(b"OK")
    assert not (root / ".dovecot.sieve").is_symlink()
    assert d.command(b"UNAUTHENTICATE\r\n")[-1].startswith(b"OK")
    assert d.command(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO")
    assert d.command(b"LOGOUT\r\n")[-1].startswith(b"OK")
    d.close()


def test_limits_keep_the_dialog_in_step(srv):
    d = Dialog(srv.ports["ManageSieve"])
    d.response()
    d.starttls(srv.cert)
    d.login()
    huge = b"#" * (200 * 1024)
    assert d.command(b'PUTSCRIPT "big" ' + literal(huge) + b"\r\n")[-1].startswith(b"NO")
    assert d.command(b"X" * 20000 + b"\r\n")[-1].startswith(b"NO")
    for i in range(32):
        assert d.command(b'PUTSCRIPT "s%d" ' % i + literal(b"keep;") + b"\r\n")[-1].startswith(b"OK")
    assert b"QUOTA/MAXSCRIPTS" in d.command(b'PUTSCRIPT "one-more" ' + literal(b"keep;") + b"\r\n")[-1]
    assert d.command(b"NOOP\r\n")[-1].startswith(b"OK")
    d.close()


def test_sieve_connect(srv, tmp_path):
    local = tmp_path / "mine.sieve"
    local.write_text('require "fileinto";\nfileinto "FromSieveConnect";\n')
    base = [SIEVE_CONNECT, "-s", "127.0.0.1", "-p", str(srv.ports["ManageSieve"]),
            "-u", "alice@example.test", "--passwordfd", "0", "--notlsverify", "-m", "PLAIN"]

    def run(*args):
        return subprocess.run(base + list(args), input="alice pw\n", capture_output=True,
                              text=True, timeout=30)

    r = run("--localsieve", str(local), "--remotesieve", "mine", "--upload")
    assert r.returncode == 0, r.stderr
    r = run("--remotesieve", "mine", "--activate")
    assert r.returncode == 0, r.stderr
    r = run("--list")
    assert r.returncode == 0 and '"mine" ACTIVE' in r.stdout, (r.stdout, r.stderr)
    out = tmp_path / "back.sieve"
    r = run("--remotesieve", "mine", "--localsieve", str(out), "--download")
    assert r.returncode == 0 and out.read_text() == local.read_text(), r.stderr
    bad = tmp_path / "bad.sieve"
    bad.write_text("fileinto \"x\";\n")
    r = run("--localsieve", str(bad), "--remotesieve", "bad", "--upload")
    assert r.returncode != 0 and "line 1" in (r.stdout + r.stderr)
    r = run("--deactivate")
    assert r.returncode == 0, r.stderr
    r = run("--remotesieve", "mine", "--delete")
    assert r.returncode == 0, r.stderr
    r = run("--list")
    assert "mine" not in r.stdout
