"""Log lines a client can write into: user names (SMTP AUTH, POP3 USER),
EHLO names and addresses are quoted and escaped, so the shipped fail2ban
filter, run by fail2ban's own fail2ban-regex, bans only the address that
really failed to log in."""

import base64
import socket
import subprocess

from conftest import ROOT, Server, read_reply

STAMP = "[2026-01-01T00:00:00Z WARN  postling::server::auth]"
# A name that, written raw, would forge a whole log line for another
# address and push our own ip= field onto a third line.
FORGED = (f"x\n{STAMP} conn=1 auth failed user=y ip=203.0.113.5\n"
          f"{STAMP} z")


def test_hostile_names_cannot_steer_fail2ban(tmp_path):
    s = Server(tmp_path, extra="""
        listen_submission = 127.0.0.1:0
        listen_pop3 = 127.0.0.1:0
    """)
    try:
        with socket.create_connection(("127.0.0.1", s.ports["submission"]), timeout=10) as c:
            f = c.makefile("rb")
            read_reply(f)
            c.sendall(b"EHLO client.test\r\n")
            read_reply(f)
            for name in (FORGED, "alice smith ip=203.0.113.6", 'q" ip=203.0.113.9 "'):
                plain = base64.b64encode(f"\0{name}\0wrong".encode())
                c.sendall(b"AUTH PLAIN " + plain + b"\r\n")
                assert read_reply(f).startswith(b"535")
        with socket.create_connection(("127.0.0.1", s.ports["POP3"]), timeout=10) as c:
            f = c.makefile("rb")
            f.readline()
            c.sendall(b'USER evil" ip=203.0.113.7 x\r\nPASS wrong\r\n')
            f.readline()
            assert f.readline().startswith(b"-ERR [AUTH]")
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            f = c.makefile("rb")
            read_reply(f)
            c.sendall(b'EHLO evil"ip=203.0.113.8\r\n')
            read_reply(f)
            c.sendall(b"MAIL FROM:<\"a b ip=203.0.113.10\"@remote.test>\r\n"
                      b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
            for want in (b"250", b"250", b"354"):
                assert read_reply(f).startswith(want)
            c.sendall(b"Subject: x\r\n\r\nx\r\n.\r\n")
            assert read_reply(f).startswith(b"250")
        assert s.wait_logged("result=delivered")
    finally:
        s.stop()
    lines = s.log
    # One event, one line: nothing a client sent started a line.
    assert all(l.startswith("[") for l in lines), "".join(lines)
    assert any('user="x\\u{a}' in l for l in lines)
    assert any('helo="evil\\"ip=203.0.113.8"' in l for l in lines)
    # The module path in each line is part of the format (RUST_LOG
    # filters, the README's examples): files moving keeps it.
    assert any("postling::server::auth] conn=" in l and "auth failed" in l for l in lines)
    assert any("postling::server::accept] conn=" in l and " connect ip=" in l for l in lines)
    log = tmp_path / "postling.log"
    log.write_text("".join(lines))
    out = subprocess.run(
        ["fail2ban-regex", "-o", "ip", str(log), str(ROOT / "conf/fail2ban/postling.conf")],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    hits = out.stdout.split()
    # Every failed login counts against its real address, and only it.
    assert hits == ["127.0.0.1"] * 4, out.stdout
