"""ACME against Debian's pebble (Let's Encrypt's test CA): postling gets
a certificate for its host name through HTTP-01 on its own web listener,
every TLS listener switches to it without a restart while an IMAPS
session opened on the starting (self-signed) pair stays open, and 30
days before the end (pebble issues short ones here) it renews, again
with the session open. pebble's directory is an address literal whose
certificate is checked against acme_ca_file alone."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BINARY, Server, add_user, make_cert
from peers import Unbound, free_port

PEBBLE = shutil.which("pebble")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(tmp):
    """A CA, and pebble's own server certificate for 127.0.0.1 from it."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", "/CN=test CA", "-keyout", str(tmp / "ca.key"), "-out", str(tmp / "ca.pem"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=pebble", "-keyout", str(tmp / "pebble.key"), "-out", str(tmp / "pebble.csr"))
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(tmp / "pebble.csr"), "-CA", str(tmp / "ca.pem"),
            "-CAkey", str(tmp / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(tmp / "san.ext"), "-out", str(tmp / "pebble.pem"))


def peer_cert(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="mx.example.test") as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial", "-issuer", "-ext",
                          "subjectAltName"], input=der, capture_output=True, check=True)
    return out.stdout.decode()


class Imaps:
    """An IMAPS session kept open across the switches."""

    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="mx.example.test")
        self.f = self.s.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0

    def noop(self):
        self.n += 1
        self.s.sendall(b"a%d NOOP\r\n" % self.n)
        while True:
            line = self.f.readline()
            assert line, "the session was closed"
            if line.startswith(b"a%d " % self.n):
                return line


@pytest.mark.skipif(not PEBBLE, reason="pebble is installed by make deps")
def test_pebble_issues_and_renews_while_a_session_stays_open(tmp_path):
    make_ca(tmp_path)
    http_port, pebble_port, mgmt_port, tls_port = free_port(), free_port(), free_port(), free_port()
    dns = Unbound(tmp_path, '    local-zone: "example.test." static\n'
                            "    local-data: 'mx.example.test. A 127.0.0.1'")
    (tmp_path / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{pebble_port}",
        "managementListenAddress": f"127.0.0.1:{mgmt_port}",
        "certificate": str(tmp_path / "pebble.pem"),
        "privateKey": str(tmp_path / "pebble.key"),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        # Thirty days and 25 seconds: due for renewal 25 s after issue.
        "certificateValidityPeriod": 30 * 86400 + 25,
    }}))
    pebble = subprocess.Popen([PEBBLE, "-config", str(tmp_path / "pebble.json"),
                               "-dnsserver", f"127.0.0.1:{dns.port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    srv = None
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", pebble_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        start_cert, start_key = make_cert(tmp_path)
        conf = tmp_path / "pre.conf"
        conf.write_text("domains = example.test\nusers_file = users\n")
        (tmp_path / "users").write_text("")
        add_user(conf, "alice@example.test", "alice pw")
        srv = Server(tmp_path, "maildir", users=(tmp_path / "users").read_text(), aliases="", extra=f"""
            hostname = mx.example.test
            tls_cert = {start_cert}
            tls_key = {start_key}
            listen_imaps = 127.0.0.1:0
            listen_http = 127.0.0.1:{http_port}
            acme = on
            acme_email = postmaster@example.test
            acme_directory = https://127.0.0.1:{pebble_port}/dir
            acme_ca_file = {tmp_path / 'ca.pem'}
        """)
        port = srv.ports["IMAPS"]
        session = Imaps(port)
        assert "localhost" in peer_cert(port)
        assert srv.wait_logged("acme: new certificate for mx.example.test", timeout=60), "".join(srv.log)
        assert srv.wait_logged("reloaded TLS certificate", timeout=10)
        first = peer_cert(port)
        assert "DNS:mx.example.test" in first and "Pebble" in first, first
        assert session.noop().startswith(b"a1 OK")
        # status and doctor say what ACME did.
        status = subprocess.run([BINARY, "status", "-c", str(srv.conf)], capture_output=True, text=True, timeout=30)
        assert "acme: ok" in status.stdout, status.stdout + status.stderr
        doctor = subprocess.run([BINARY, "doctor", "-c", str(srv.conf)], capture_output=True, text=True, timeout=120)
        assert "ok   acme: ok" in doctor.stdout, doctor.stdout
        assert "ok   certificate for mx.example.test: covered" in doctor.stdout, doctor.stdout
        # Kept 0600 in data_dir.
        for name in ["account.key", "cert.pem", "key.pem"]:
            assert os.stat(tmp_path / "data/acme" / name).st_mode & 0o777 == 0o600
        # Renewal: due 25 s after issue.
        deadline = time.time() + 90
        while time.time() < deadline and sum("reloaded TLS certificate" in l for l in srv.log) < 2:
            time.sleep(1)
        assert sum("reloaded TLS certificate" in l for l in srv.log) >= 2, "".join(srv.log)
        second = peer_cert(port)
        assert second.split("\n")[0] != first.split("\n")[0], (first, second)
        assert session.noop().startswith(b"a2 OK")
    finally:
        if srv:
            srv.stop()
        pebble.terminate()
        try:
            pebble.wait(10)
        except subprocess.TimeoutExpired:
            pebble.kill()
            pebble.wait()
        dns.stop()


def test_a_failing_ca_is_retried_and_reported(tmp_path):
    """No CA answers: the failure is logged with its retry, and status
    and doctor say so; the starting pair goes on serving."""
    start_cert, start_key = make_cert(tmp_path)
    (tmp_path / "ca.pem").write_bytes(start_cert.read_bytes())
    srv = Server(tmp_path, extra=f"""
        hostname = mx.example.test
        tls_cert = {start_cert}
        tls_key = {start_key}
        listen_imaps = 127.0.0.1:0
        acme = on
        acme_directory = https://127.0.0.1:1/dir
        acme_ca_file = {tmp_path / 'ca.pem'}
    """)
    try:
        assert srv.wait_logged("trying again in 60s", timeout=30), "".join(srv.log)
        status = subprocess.run([BINARY, "status", "-c", str(srv.conf)], capture_output=True, text=True, timeout=30)
        assert "acme: failed:" in status.stdout and "next try in 60s" in status.stdout, status.stdout
        doctor = subprocess.run([BINARY, "doctor", "-c", str(srv.conf)], capture_output=True, text=True, timeout=120)
        assert "fail acme: failed:" in doctor.stdout, doctor.stdout
        assert doctor.returncode == 1
        assert "localhost" in peer_cert(srv.ports["IMAPS"])
    finally:
        srv.stop()


@pytest.mark.skipif(not PEBBLE, reason="pebble is installed by make deps")
def test_webroot_behind_another_web_server(tmp_path):
    """acme_webroot: the challenge files are written for another web
    server (here Python's http.server) to serve; postling has no web
    listener of its own."""
    make_ca(tmp_path)
    http_port, pebble_port, mgmt_port, tls_port = free_port(), free_port(), free_port(), free_port()
    www = tmp_path / "www"
    www.mkdir()
    dns = Unbound(tmp_path, '    local-zone: "example.test." static\n'
                            "    local-data: 'mx.example.test. A 127.0.0.1'")
    (tmp_path / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{pebble_port}", "managementListenAddress": f"127.0.0.1:{mgmt_port}",
        "certificate": str(tmp_path / "pebble.pem"), "privateKey": str(tmp_path / "pebble.key"),
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    pebble = subprocess.Popen([PEBBLE, "-config", str(tmp_path / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns.port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    web = subprocess.Popen(["python3", "-m", "http.server", str(http_port), "--bind", "127.0.0.1",
                            "--directory", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv = None
    try:
        for port in (pebble_port, http_port):
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
        start_cert, start_key = make_cert(tmp_path)
        srv = Server(tmp_path, extra=f"""
            hostname = mx.example.test
            tls_cert = {start_cert}
            tls_key = {start_key}
            listen_imaps = 127.0.0.1:0
            acme = on
            acme_directory = https://127.0.0.1:{pebble_port}/dir
            acme_ca_file = {tmp_path / 'ca.pem'}
            acme_webroot = {www}
        """)
        assert srv.wait_logged("acme: new certificate for mx.example.test", timeout=60), "".join(srv.log)
        assert srv.wait_logged("reloaded TLS certificate", timeout=10)
        assert "DNS:mx.example.test" in peer_cert(srv.ports["IMAPS"])
        # The challenge file is removed once answered.
        assert list((www / ".well-known/acme-challenge").iterdir()) == []
    finally:
        if srv:
            srv.stop()
        for p in (pebble, web):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        dns.stop()
