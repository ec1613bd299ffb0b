"""TLS and SMTP AUTH through real clients: smtplib (starttls, SMTP_SSL,
login), swaks, openssl s_client; the STARTTLS injection defence; relay
policy; login failure delays and lockout."""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

from pathlib import Path

import pytest

from conftest import Server, add_user, make_cert, read_reply


def client_context(server):
    ctx = ssl.create_default_context(cafile=str(server.cert))
    return ctx


def message(frm, to, subject):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n"
            f"body of {subject}\r\n").encode()


def test_submission_starttls_login_and_send(tls_server):
    s = tls_server
    with smtplib.SMTP("127.0.0.1", s.ports["submission"]) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        # No MAIL without AUTH on a submission port.
        code, _ = c.mail("alice@example.test")
        assert code == 530
        c.rset()
        c.starttls(context=client_context(s))
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        assert "PLAIN" in c.esmtp_features["auth"] and "LOGIN" in c.esmtp_features["auth"]
        c.login("alice@example.test", "alice pw")
        c.sendmail("alice@example.test",
                   ["bob@example.test", "friend@elsewhere.test"],
                   message("alice@example.test", "bob@example.test", "sub"))
    got = s.messages("bob")[0]
    assert "with ESMTPSA (TLSv1.3 TLS13_" in got["Received"]
    queued = s.queued()
    assert len(queued) == 1
    assert queued[0].startswith("from <alice@example.test>\nto <friend@elsewhere.test>\n\n")


@pytest.mark.parametrize("user,password", [
    ("alice@example.test", "alice pw"),   # {ARGON2ID} by postling user add
    ("bob@example.test", "bob pw"),       # {SHA512-CRYPT} by doveadm pw
    ("carol@example.test", "carol pw"),   # {BLF-CRYPT} by doveadm pw
])
def test_implicit_tls_login_every_scheme(tls_server, user, password):
    s = tls_server
    with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"],
                          context=client_context(s)) as c:
        c.ehlo("client.test")
        c.login(user, password)
        c.sendmail(user, ["alice@example.test"], message(user, "alice", user))
    assert any(m["Subject"] == user for m in s.messages("alice"))


def test_sender_must_be_owned(tls_server):
    s = tls_server
    with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"],
                          context=client_context(s)) as c:
        c.login("bob@example.test", "bob pw")
        code, text = c.mail("alice@example.test")
        assert (code, text[:5]) == (553, b"5.7.1")
        # An alias that delivers to bob, with a +tag, is his to use.
        assert c.mail("sales+q4@example.test")[0] == 250


def test_wrong_passwords_are_delayed_and_logged(tls_server):
    s = tls_server
    with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"],
                          context=client_context(s)) as c:
        for user in ("alice@example.test", "nobody@example.test"):
            start = time.monotonic()
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                c.login(user, "wrong")
            assert e.value.smtp_code == 535
            assert e.value.smtp_error.startswith(b"5.7.8")
            # Answered only after the fixed delay, known user or not.
            assert time.monotonic() - start >= 1.9
        c.login("alice@example.test", "alice pw")
    assert s.logged("auth failed user=\"nobody@example.test\" ip=127.0.0.1")
    # The shipped fail2ban filter finds the address in those lines.
    conf = (Path(__file__).resolve().parents[2] / "conf/fail2ban/postling.conf").read_text()
    regexes = [l.split("=", 1)[-1].strip() for l in conf.splitlines()
               if "<HOST>" in l and not l.startswith("#")]
    hits = [m.group("host") for line in s.log for r in regexes
            if (m := re.match(r.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"), line.rstrip("\n")))]
    assert hits.count("127.0.0.1") == 4, hits  # smtplib tries PLAIN and LOGIN


def raw_tls_client(s, port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    return sock


def test_starttls_discards_pipelined_commands(tls_server):
    """CVE-2011-0411: commands sent in the clear right behind STARTTLS
    must never run inside the TLS session."""
    s = tls_server
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    f = sock.makefile("rb")
    assert read_reply(f).startswith(b"220")
    sock.sendall(b"EHLO c\r\n")
    read_reply(f)
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@evil.test>\r\n")
    assert read_reply(f).startswith(b"220 2.0.0")
    tls = client_context(s).wrap_socket(sock, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"EHLO c\r\n")
    ehlo = read_reply(tf)
    assert ehlo.startswith(b"250-mx.example.test"), ehlo
    tls.sendall(b"RCPT TO:<bob@example.test>\r\n")
    assert read_reply(tf).startswith(b"503 5.5.1"), "the injected MAIL ran"
    tls.close()
    assert s.logged("discarded 28 octets pipelined after STARTTLS")


def test_auth_edge_cases(tls_server):
    s = tls_server
    sock = socket.create_connection(("127.0.0.1", s.ports["submissions"]), timeout=20)
    tls = client_context(s).wrap_socket(sock, server_hostname="localhost")
    f = tls.makefile("rb")

    def cmd(line):
        tls.sendall(line + b"\r\n")
        return read_reply(f)

    assert read_reply(f).startswith(b"220")
    assert cmd(b"AUTH PLAIN").startswith(b"503")           # before EHLO
    cmd(b"EHLO c")
    assert cmd(b"AUTH CRAM-MD5").startswith(b"504 5.5.4")
    assert cmd(b"AUTH PLAIN not-base64!").startswith(b"501 5.5.2")
    assert cmd(b"AUTH LOGIN").startswith(b"334 VXNlcm5hbWU6")
    assert cmd(b"*").startswith(b"501 5.7.0")               # cancelled
    huge = base64.b64encode(b"\0" + b"a" * 300 + b"\0pw")
    assert cmd(b"AUTH PLAIN " + huge).startswith(b"501 5.5.4")  # over-long
    assert cmd(b"AUTH PLAIN " + b"A" * 20000).startswith(b"500 5.5.2")
    good = base64.b64encode(b"\0alice@example.test\0alice pw")
    assert cmd(b"AUTH PLAIN " + good).startswith(b"235 2.7.0")
    assert cmd(b"AUTH PLAIN " + good).startswith(b"503 5.5.1")  # twice
    assert cmd(b"QUIT").startswith(b"221")


NETNS_CLIENT = r"""
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
c = smtplib.SMTP("192.0.2.10", port, timeout=20)
c.ehlo("public.test")
assert c.has_extn("starttls") and not c.has_extn("auth"), c.esmtp_features
code, text = c.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBwdw==")
assert code == 538 and text.startswith(b"5.7.11"), (code, text)
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
c.starttls(context=ctx)
c.ehlo("public.test")
assert "PLAIN" in c.esmtp_features["auth"]
c.login("alice@example.test", "alice pw")
c.quit()
print("ok")
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="needs root for a network namespace")
def test_no_password_in_cleartext_from_a_public_address(tmp_path):
    """Loopback is exempt from require_tls_auth, so the public case runs
    in a network namespace of our own, server and client both on
    192.0.2.10 there: traffic never leaves it."""
    ns = f"postling-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", "192.0.2.10/32", "dev", "lo"],
                       check=True)
        cert, key = make_cert(tmp_path)
        conf = tmp_path / "pre.conf"
        conf.write_text("domains = example.test\nusers_file = users\n")
        (tmp_path / "users").write_text("")
        add_user(conf, "alice@example.test", "alice pw")
        users = (tmp_path / "users").read_text() + "bob@example.test\n"
        s = Server(tmp_path, users=users,
                   netns=ns, extra=f"""
            tls_cert = {cert}
            tls_key = {key}
            listen_smtp = 192.0.2.10:0
        """)
        try:
            out = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", NETNS_CLIENT,
                 str(s.port), str(cert)],
                capture_output=True, text=True, timeout=60)
            assert out.stdout.strip() == "ok", out.stdout + out.stderr
        finally:
            s.stop()
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def test_noop_keeps_answering_while_20_logins_hash(tls_server):
    s = tls_server
    port = s.ports["submissions"]
    stop = threading.Event()
    gaps = []

    def noops():
        sock = client_context(s).wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=20),
            server_hostname="localhost")
        f = sock.makefile("rb")
        read_reply(f)
        last = time.monotonic()
        while not stop.is_set():
            sock.sendall(b"NOOP\r\n")
            assert read_reply(f).startswith(b"250")
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        sock.close()

    outcomes = []

    def login(i):
        with smtplib.SMTP_SSL("127.0.0.1", port, context=client_context(s)) as c:
            c.ehlo("x")
            password = "alice pw" if i % 2 else "wrong"
            plain = base64.b64encode(f"\0alice@example.test\0{password}".encode())
            outcomes.append(c.docmd("AUTH", "PLAIN " + plain.decode())[0])

    t = threading.Thread(target=noops)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    logins = [threading.Thread(target=login, args=(i,)) for i in range(20)]
    for l in logins:
        l.start()
    for l in logins:
        l.join()
    elapsed = time.monotonic() - start
    stop.set()
    t.join()
    assert sorted(outcomes) == [235] * 10 + [535] * 10
    # The logins took seconds (each failure waits 2 s); NOOPs never waited
    # for them: many replies, and no gap anywhere near that long.
    assert elapsed >= 2
    assert len(gaps) > 20
    assert max(gaps) < elapsed / 2, (max(gaps), elapsed)


def test_lockout_after_failures(tmp_path):
    cert, key = make_cert(tmp_path)
    s = Server(tmp_path, extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_submissions = 127.0.0.1:0
        auth_failure_limit = 2
        auth_failure_window = 60
    """)
    s.cert = cert
    try:
        port = s.ports["submissions"]
        bad = base64.b64encode(b"\0alice@example.test\0bad").decode()
        with smtplib.SMTP_SSL("127.0.0.1", port, context=client_context(s)) as c:
            c.ehlo("x")
            assert c.docmd("AUTH", "PLAIN " + bad)[0] == 535
            assert c.docmd("AUTH", "PLAIN " + bad)[0] == 535
            code, text = c.getreply()
            assert code == 421 and b"authentication failures" in text
        # New connections from the address are refused for a while.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            assert sock.recv(200).startswith(b"421 4.7.0")
        assert s.logged("locked out")
    finally:
        s.stop()


OPEN_RELAY_ATTEMPTS = [
    ("victim@remote.test", 550),
    ("victim%remote.test@example.test", 550),
    ("@example.test:victim@remote.test", 550),
    ('"victim@remote.test"@example.test', 550),
    ("remote.test!victim@example.test", 550),
    ("victim@remote.test@example.test", 501),
    ("victim@[192.0.2.1]", 550),
]


@pytest.mark.parametrize("rcpt,code", OPEN_RELAY_ATTEMPTS)
def test_never_an_open_relay(tmp_path, rcpt, code):
    s = Server(tmp_path)
    try:
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.ehlo("c")
            c.mail("spammer@remote.test")
            got, _ = c.rcpt(f"<{rcpt}>")
            assert got == code
        assert s.queued() == []
    finally:
        s.stop()


def test_trusted_networks_may_relay(tmp_path):
    s = Server(tmp_path, extra="trusted_networks = 127.0.0.0/8")
    try:
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("cron@example.test", ["admin@elsewhere.test"],
                       message("cron", "admin", "report"))
        assert s.queued()[0].startswith("from <cron@example.test>\nto <admin@elsewhere.test>\n")
    finally:
        s.stop()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks missing")
@pytest.mark.parametrize("mode,auth", [("--tls", "PLAIN"), ("--tls", "LOGIN"),
                                       ("--tlsc", "PLAIN"), ("--tlsc", "LOGIN")])
def test_swaks_tls_and_auth(tls_server, mode, auth):
    s = tls_server
    port = s.ports["submission" if mode == "--tls" else "submissions"]
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", mode, "--auth", auth,
         "--auth-user", "alice@example.test", "--auth-password", "alice pw",
         "--from", "alice@example.test", "--to", "bob@example.test",
         "--header", f"Subject: swaks {mode} {auth}"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "235 2.7.0 Authentication successful" in out.stdout
    assert any(m["Subject"] == f"swaks {mode} {auth}" for m in s.messages("bob"))


def test_openssl_s_client_starttls(tls_server):
    s = tls_server
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{s.port}", "-CAfile", str(s.cert), "-verify_return_error",
         "-servername", "localhost", "-ign_eof"],
        input="EHLO client.test\r\nQUIT\r\n", capture_output=True, text=True,
        timeout=60)
    assert "Verify return code: 0 (ok)" in out.stdout, out.stdout + out.stderr
    assert "250-AUTH PLAIN LOGIN" in out.stdout or "250 AUTH PLAIN LOGIN" in out.stdout
    assert "221 2.0.0" in out.stdout


@pytest.mark.parametrize("kind,form", [
    ("rsa", "pkcs8"), ("rsa", "pkcs1"), ("ec", "pkcs8"), ("ec", "sec1"),
    ("ed25519", "pkcs8"),
])
def test_key_types_load(tmp_path, kind, form):
    cert, key = make_cert(tmp_path, kind)
    if form != "pkcs8":
        # BEGIN RSA PRIVATE KEY / BEGIN EC PRIVATE KEY, as older tools write.
        tool = "rsa" if kind == "rsa" else "ec"
        old = key.with_suffix(".pkcs8")
        key.rename(old)
        flags = ["-traditional"] if kind == "rsa" else []  # ec writes SEC1
        subprocess.run(["openssl", tool, "-in", str(old), "-out", str(key), *flags],
                       check=True, capture_output=True)
        marker = "RSA PRIVATE KEY" if kind == "rsa" else "EC PRIVATE KEY"
        assert marker in key.read_text()
    s = Server(tmp_path, extra=f"tls_cert = {cert}\ntls_key = {key}\n"
                               "listen_submissions = 127.0.0.1:0")
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], context=ctx) as c:
            assert c.ehlo()[0] == 250
    finally:
        s.stop()


def test_bad_certificate_is_a_clear_error_and_reload_keeps_old(tmp_path):
    cert, key = make_cert(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    conf = tmp_path / "bad.conf"
    conf.write_text(f"domains = example.test\nusers_file = users\ntls_cert = {bad}\n"
                    f"tls_key = {key}\nlisten_smtp = 127.0.0.1:0\nrun_as = root\n")
    (tmp_path / "users").write_text("")
    from conftest import BINARY
    out = subprocess.run([BINARY, "serve", "-c", str(conf)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and str(bad) in out.stderr, out.stderr
    s = Server(tmp_path, extra=f"tls_cert = {cert}\ntls_key = {key}\nlisten_submissions = 127.0.0.1:0")
    try:
        original = cert.read_bytes()
        cert.write_text("garbage\n")
        s.proc.send_signal(1)  # SIGHUP
        assert s.wait_logged("TLS reload failed")
        cert.write_bytes(original)
        ctx = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], context=ctx) as c:
            assert c.ehlo()[0] == 250
    finally:
        s.stop()


def test_sighup_loads_a_renewed_certificate_without_dropping_connections(tmp_path):
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    cert, key = make_cert(old_dir)
    s = Server(tmp_path, extra=f"tls_cert = {cert}\ntls_key = {key}\n"
                               "listen_submissions = 127.0.0.1:0")
    try:
        port = s.ports["submissions"]
        old_ctx = ssl.create_default_context(cafile=str(cert))
        before = smtplib.SMTP_SSL("127.0.0.1", port, context=old_ctx)
        before.ehlo("x")
        # certbot renews: new key, new certificate, same paths.
        new_cert, new_key = make_cert(new_dir)
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        s.proc.send_signal(1)  # SIGHUP
        assert s.wait_logged("reloaded TLS certificate")
        # New connections get the new certificate...
        new_ctx = ssl.create_default_context(cafile=str(new_cert))
        with smtplib.SMTP_SSL("127.0.0.1", port, context=new_ctx) as c:
            assert c.ehlo()[0] == 250
        with pytest.raises(ssl.SSLCertVerificationError):
            smtplib.SMTP_SSL("127.0.0.1", port, context=old_ctx, timeout=10)
        # ...and the connection made before the reload is still there.
        assert before.noop()[0] == 250
        before.quit()
    finally:
        s.stop()


def test_an_ip_address_as_sni_is_not_a_warning(tls_server):
    """Webmails connect to tls://127.0.0.1 and send the address as SNI:
    rustls's complaint about it is not logged as a warning for every
    connection (the server notes it at debug, with ip=)."""
    for _ in range(3):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_server.ports['submissions']}",
             "-servername", "127.0.0.1", "-quiet"],
            input=b"QUIT\r\n", capture_output=True, timeout=30)
        assert b"220 " in out.stdout, out.stdout + out.stderr
    assert tls_server.wait_logged("tls ip=127.0.0.1 version=")
    assert not any("SNI" in line for line in tls_server.log), [l for l in tls_server.log if "SNI" in l]
