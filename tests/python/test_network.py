"""Limits and client addresses as the Internet presents them, inside a
network namespace of the test's own (traffic never leaves it): an IPv6
/64 flooding port 25, and clients behind HAProxy speaking the PROXY
protocol to postling."""

import os
import socket
import subprocess
import time

import pytest

from conftest import Netns, Server, make_cert, users_with_password

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


FLOOD = """
    import resource, smtplib, socket, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    server, smtp, sub, pop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    FREEBIND = 15
    def from_addr(n):
        s = socket.socket(socket.AF_INET6)
        s.setsockopt(socket.SOL_IP, FREEBIND, 1)
        s.settimeout(10)
        s.bind((f"2001:db8:1:2::{n:x}", 0))
        return s
    held, greeted, refused = [], 0, 0
    for n in range(1, 1001):
        s = from_addr(n)
        s.connect((server, smtp))
        line = s.recv(200)
        if line.startswith(b"220"):
            greeted += 1
            held.append(s)
        else:
            assert line.startswith(b"421"), line
            refused += 1
            s.close()
    # Still flooding: a user on the same /64 reads and sends mail.
    p = socket.create_connection((server, pop), timeout=10,
                                 source_address=("2001:db8:1:2::beef", 0))
    f = p.makefile("rb")
    assert f.readline().startswith(b"+OK")
    p.sendall(b"USER alice@example.test\\r\\nPASS alice pw\\r\\nSTAT\\r\\nQUIT\\r\\n")
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK"), "POP3 login refused"
    n_msgs = int(f.readline().split()[1])
    p.close()
    with smtplib.SMTP(server, sub, timeout=10, source_address=("2001:db8:1:2::cafe", 0)) as c:
        c.ehlo("laptop.test")
        c.login("alice@example.test", "alice pw")
        c.sendmail("alice@example.test", ["bob@example.test"], b"Subject: still here\\r\\n\\r\\nhi\\r\\n")
    print(greeted, refused, n_msgs)
    for s in held:
        s.close()
"""


@root_only
def test_a_flood_from_one_ipv6_64_leaves_pop3_and_submission_working(tmp_path):
    ns = Netns(f"pl-flood-{os.getpid()}",
               v6=["2001:db8:ffff::1/128", "2001:db8:1:2::beef/128", "2001:db8:1:2::cafe/128"],
               v6_anyip=["2001:db8:1:2::/64"])
    try:
        s = Server(tmp_path, users=users_with_password(tmp_path, "alice pw"), netns=ns.name,
                   extra="""
            listen_smtp = [2001:db8:ffff::1]:0
            listen_submission = [2001:db8:ffff::1]:0
            listen_pop3 = [2001:db8:ffff::1]:0
            require_tls_auth = no
        """)
        try:
            out = ns.python(FLOOD, "2001:db8:ffff::1", s.port, s.ports["submission"],
                            s.ports["POP3"])
            assert out.returncode == 0, out.stdout + out.stderr
            greeted, refused, _ = map(int, out.stdout.split())
            # Ten slots for the whole /64 (max_connections_per_ip), not
            # one per address; the rest are told to come back later.
            assert (greeted, refused) == (10, 990)
            assert s.wait_logged("result=delivered")
            assert s.logged("refused ip=2001:db8:1:2::b: too many connections")
        finally:
            s.stop()
    finally:
        ns.delete()


HAPROXY = """
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp_v1
    bind 192.0.2.10:{smtp_front}
    default_backend smtp_v1
backend smtp_v1
    server postling 127.0.0.1:{smtp_back} send-proxy
frontend pop3_v2
    bind 192.0.2.10:{pop3_front}
    default_backend pop3_v2
backend pop3_v2
    server postling 127.0.0.1:{pop3_back} send-proxy-v2
frontend subs_v2
    bind 192.0.2.10:{subs_front}
    default_backend subs_v2
backend subs_v2
    server postling 127.0.0.1:{subs_back} send-proxy-v2
"""

BEHIND_PROXY = """
    import smtplib, socket, ssl, sys
    host = "192.0.2.10"
    smtp, pop3, subs, direct, cert = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    def sock_from(port):
        s = socket.create_connection((host, port), timeout=10, source_address=("198.51.100.7", 0))
        return s, s.makefile("rb")
    def reply(f):
        lines = []
        while True:
            line = f.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)
    # SMTP through PROXY v1: a stranger, not the proxy's loopback.
    s, f = sock_from(smtp)
    assert reply(f).startswith(b"220")
    s.sendall(b"EHLO client.test\\r\\n")
    ehlo = reply(f)
    assert b"AUTH" not in ehlo, ehlo  # no passwords in the clear
    s.sendall(b"MAIL FROM:<a@remote.test>\\r\\nRCPT TO:<x@elsewhere.test>\\r\\n")
    assert reply(f).startswith(b"250")
    assert reply(f).startswith(b"550 5.7.1"), "relayed for a stranger"
    s.sendall(b"RCPT TO:<alice@example.test>\\r\\nDATA\\r\\n")
    assert reply(f).startswith(b"250") and reply(f).startswith(b"354")
    s.sendall(b"Subject: via proxy\\r\\n\\r\\nhi\\r\\n.\\r\\nQUIT\\r\\n")
    assert reply(f).startswith(b"250")
    s.close()
    # POP3 through PROXY v2: USER before TLS is refused for a stranger.
    s, f = sock_from(pop3)
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER alice@example.test\\r\\n")
    assert f.readline().startswith(b"-ERR [AUTH]")
    s.close()
    # Implicit TLS through PROXY v2: the ClientHello follows the header.
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False  # the certificate names localhost
    with smtplib.SMTP_SSL(host, subs, context=ctx, source_address=("198.51.100.7", 0)) as c:
        c.ehlo("laptop.test")
        c.login("alice@example.test", "alice pw")
    # Straight to the PROXY listener from a host not in proxy_from.
    s = socket.create_connection(("127.0.0.1", direct), timeout=10, source_address=("192.0.2.10", 0))
    assert s.recv(100) == b"", "served without a PROXY header"
    print("ok")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@root_only
def test_clients_behind_haproxy_are_judged_by_their_own_address(tmp_path):
    ns = Netns(f"pl-proxy-{os.getpid()}", v4=["192.0.2.10/32", "198.51.100.7/32"])
    cert, key = make_cert(tmp_path)
    users = users_with_password(tmp_path, "alice pw")
    haproxy = None
    try:
        s = Server(tmp_path, users=users, netns=ns.name, extra=f"""
            tls_cert = {cert}
            tls_key = {key}
            listen_smtp = proxy:127.0.0.1:0
            listen_pop3 = proxy:127.0.0.1:0
            listen_submissions = proxy:127.0.0.1:0
            proxy_from = 127.0.0.1
            trusted_networks = 127.0.0.0/8
        """)
        try:
            p = s.proxy_ports
            fronts = {k: free_port() for k in ("smtp", "pop3", "subs")}
            cfg = tmp_path / "haproxy.cfg"
            cfg.write_text(HAPROXY.format(
                smtp_front=fronts["smtp"], smtp_back=p["SMTP"],
                pop3_front=fronts["pop3"], pop3_back=p["POP3"],
                subs_front=fronts["subs"], subs_back=p["submissions"]))
            haproxy = subprocess.Popen(
                ["ip", "netns", "exec", ns.name, "haproxy", "-db", "-f", str(cfg)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(100):  # until it listens
                if ns.python(f"import socket; socket.create_connection(('192.0.2.10', {fronts['smtp']}), timeout=1)").returncode == 0:
                    break
                time.sleep(0.1)
            out = ns.python(BEHIND_PROXY, fronts["smtp"], fronts["pop3"], fronts["subs"],
                            p["SMTP"], cert)
            assert out.stdout.strip().endswith("ok"), out.stdout + out.stderr
            assert s.wait_logged("result=delivered")
            assert s.logged("proxy ip=127.0.0.1 speaks for ip=198.51.100.7 service=SMTP")
            assert s.logged("proxy ip=127.0.0.1 speaks for ip=198.51.100.7 service=POP3")
            assert s.logged('auth ok user="alice@example.test" ip=198.51.100.7')
            assert s.logged("ip=198.51.100.7 result=delivered")
            assert s.logged("refused ip=192.0.2.10: not in proxy_from")
        finally:
            s.stop()
    finally:
        if haproxy:
            haproxy.terminate()
            haproxy.wait(10)
        ns.delete()
