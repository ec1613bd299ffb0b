"""The small HTTP listener (listen_http, listen_https): Thunderbird's
autoconfig checked field by field, Outlook's autodiscover, an Apple
profile read by plistlib, the MTA-STS policy over HTTPS (curl, and
headless Chromium), /metrics accepted by Prometheus's promtool and
refused to other clients, and malformed or oversized requests each
answered with a clean 4xx while the server's memory stays bounded."""

import plistlib
import re
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import Server, add_user

CHROMIUM = shutil.which("chromium")
PROMTOOL = shutil.which("promtool")


def make_site_cert(folder):
    """A self-signed certificate for the names the listener serves."""
    key, cert = folder / "web.key", folder / "web.pem"
    names = "DNS:mx.example.test,DNS:mta-sts.example.test,DNS:autoconfig.example.test,IP:127.0.0.1"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=mx.example.test",
         "-addext", f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture
def srv(tmp_path):
    cert, key = make_site_cert(tmp_path)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", "alice pw")
    s = Server(tmp_path, "maildir", users=(tmp_path / "users").read_text(), aliases="", extra=f"""
        domains = example.test other.test
        tls_cert = {cert}
        tls_key = {key}
        listen_imaps = 127.0.0.1:0
        listen_pop3 = 127.0.0.1:0
        listen_submission = 127.0.0.1:0
        listen_http = 127.0.0.1:0
        listen_https = 127.0.0.1:0
        mta_sts_mode = enforce
    """)
    s.cert = cert
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def curl(srv, path, *extra, https=False, host="mx.example.test"):
    """(status, headers, body) of one request made by curl."""
    port = srv.ports["HTTPS" if https else "HTTP"]
    scheme = "https" if https else "http"
    url = f"{scheme}://{host}:{port}{path}"
    trust = ["--cacert", str(srv.cert)] if https else []
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "10", *trust,
         "--resolve", f"{host}:{port}:127.0.0.1", *extra, url],
        capture_output=True, check=True)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, head.decode(), body


def test_thunderbird_autoconfig_field_by_field(srv):
    for path in ["/mail/config-v1.1.xml?emailaddress=alice%40example.test",
                 "/.well-known/autoconfig/mail/config-v1.1.xml"]:
        status, head, body = curl(srv, path, host="autoconfig.example.test")
        assert status == 200, body
        assert "Content-Type: text/xml" in head
        root = ET.fromstring(body)
        assert root.tag == "clientConfig" and root.get("version") == "1.1"
        provider = root.find("emailProvider")
        assert provider.get("id") == "example.test"
        assert [d.text for d in provider.findall("domain")] == ["example.test", "other.test"]
        assert provider.find("displayName").text
        servers = {(s.tag, s.get("type")): s for s in provider if s.tag.endswith("Server")}
        want = {
            ("incomingServer", "imap"): (srv.ports["IMAPS"], "SSL"),
            ("incomingServer", "pop3"): (srv.ports["POP3"], "STARTTLS"),
            ("outgoingServer", "smtp"): (srv.ports["submission"], "STARTTLS"),
        }
        assert set(servers) == set(want)
        for k, (port, socket_type) in want.items():
            s = servers[k]
            assert s.find("hostname").text == "mx.example.test"
            assert int(s.find("port").text) == port
            assert s.find("socketType").text == socket_type
            assert s.find("authentication").text == "password-cleartext"
            assert s.find("username").text == "%EMAILADDRESS%"
    # A domain we do not serve has no settings here.
    status, _, _ = curl(srv, "/mail/config-v1.1.xml?emailaddress=bob%40elsewhere.test")
    assert status == 404


def test_autodiscover_and_apple_profile(srv):
    request = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/'
               'exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.test'
               '</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/'
               'outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>')
    status, _, body = curl(srv, "/autodiscover/autodiscover.xml", "-X", "POST",
                           "-H", "Content-Type: text/xml", "--data-binary", request, https=True)
    assert status == 200, body
    ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    protocols = {p.find("r:Type", ns).text: p for p in ET.fromstring(body).iterfind(".//r:Protocol", ns)}
    assert set(protocols) == {"IMAP", "POP3", "SMTP"}
    assert int(protocols["IMAP"].find("r:Port", ns).text) == srv.ports["IMAPS"]
    assert protocols["IMAP"].find("r:Encryption", ns).text == "SSL"
    assert protocols["SMTP"].find("r:Encryption", ns).text == "TLS"
    assert protocols["SMTP"].find("r:LoginName", ns).text == "alice@example.test"
    # GET is not how autodiscover asks.
    assert curl(srv, "/autodiscover/autodiscover.xml")[0] == 405

    status, head, body = curl(srv, "/email.mobileconfig?emailaddress=alice%40example.test", https=True)
    assert status == 200
    assert "Content-Type: application/x-apple-aspen-config" in head
    assert 'filename="example.test.mobileconfig"' in head
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration"
    [account] = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed"
    assert account["EmailAccountType"] == "EmailTypeIMAP"
    assert account["EmailAddress"] == "alice@example.test"
    assert account["IncomingMailServerHostName"] == "mx.example.test"
    assert account["IncomingMailServerPortNumber"] == srv.ports["IMAPS"]
    assert account["IncomingMailServerUseSSL"] is True
    assert account["OutgoingMailServerPortNumber"] == srv.ports["submission"]
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}",
                        account["PayloadUUID"])
    assert curl(srv, "/email.mobileconfig?emailaddress=x%40elsewhere.test")[0] == 404


def test_mta_sts_policy_over_https_only(srv):
    status, head, body = curl(srv, "/.well-known/mta-sts.txt", https=True, host="mta-sts.example.test")
    assert status == 200
    assert body == b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
    # RFC 8461 3.3: HTTPS only, and only at mta-sts.DOMAIN.
    assert curl(srv, "/.well-known/mta-sts.txt", host="mta-sts.example.test")[0] == 404
    assert curl(srv, "/.well-known/mta-sts.txt", https=True)[0] == 404
    # ALPN offers HTTP/1.1.
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.ports['HTTPS']}", "-alpn", "h2,http/1.1"],
        input=b"", capture_output=True, timeout=20)
    assert b"ALPN protocol: http/1.1" in out.stdout


@pytest.mark.skipif(not CHROMIUM, reason="chromium is installed by make deps")
def test_chromium_fetches_the_policy(srv, tmp_path):
    port = srv.ports["HTTPS"]
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
         f"--user-data-dir={tmp_path / 'chromium'}",
         "--host-resolver-rules=MAP mta-sts.example.test 127.0.0.1",
         "--dump-dom", f"https://mta-sts.example.test:{port}/.well-known/mta-sts.txt"],
        capture_output=True, timeout=120)
    text = out.stdout.decode()
    assert "version: STSv1" in text and "mode: enforce" in text, out.stderr.decode()[-2000:]


@pytest.mark.skipif(not PROMTOOL, reason="promtool is installed by make deps")
def test_metrics_pass_promtool_and_count(srv, tmp_path):
    import smtplib
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("someone@elsewhere.test", ["alice@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    status, head, body = curl(srv, "/metrics")
    assert status == 200
    assert "text/plain; version=0.0.4" in head
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    samples = dict(re.findall(r"^(postling_\S+) (\d+)$", body.decode(), re.M))
    assert samples["postling_messages_received_total"] == "1"
    assert samples["postling_messages_delivered_last_hour"] == "1"
    assert samples["postling_queue_messages"] == "0"
    assert int(samples["postling_resident_memory_bytes"]) > 0
    assert 'postling_connections{service="HTTP"} 1' in body.decode()


def test_metrics_only_for_metrics_allow(tmp_path):
    s = Server(tmp_path, extra="""
        listen_http = 127.0.0.1:0
        metrics_allow = 192.0.2.0/24
    """)
    try:
        status, _, _ = curl(s, "/metrics")
        assert status == 403
    finally:
        s.stop()


def raw(port, data: bytes, read_timeout=15):
    """Sends `data`, returns everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def test_bad_requests_get_a_clean_4xx_and_memory_stays_bounded(srv):
    port = srv.ports["HTTP"]
    cases = [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
        (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", b"505"),
        (b"PUT /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"405"),
        (b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", b"400"),
    ]
    for request, status in cases:
        reply = raw(port, request)
        assert reply.startswith(b"HTTP/1.1 " + status), (request[:40], reply[:200])
        assert b"Connection: close" in reply
    # A request that never ends is cut off by its deadline, with 408,
    # however slowly it trickles.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        reply = b""
        while time.monotonic() - start < 25:
            try:
                sock.sendall(b"X: y\r\n")
            except OSError:
                break
            time.sleep(1)
            sock.setblocking(False)
            try:
                reply += sock.recv(4096)
            except BlockingIOError:
                pass
            sock.setblocking(True)
            if reply:
                break
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert time.monotonic() - start < 20
    # Many oversized requests at once: memory returns to where it was.
    before = rss_kib(srv.proc.pid)
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 7000)
        socks.append(s)
    time.sleep(0.5)
    during = rss_kib(srv.proc.pid)
    for s in socks:
        s.close()
    assert during - before < 8 * 1024, (before, during)
    # Pipelined requests all get answers, in order.
    many = b"".join(b"GET /nothing%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(50))
    reply = raw(port, many + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 404") == 51
