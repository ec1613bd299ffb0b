#!/usr/bin/env python3
"""`make test-arm`'s end-to-end check: the ARM binary, run under
qemu-user, receives a message over SMTP and serves it back over POP3,
byte for byte; sends one to another domain, found by MX through a
private Unbound, to a scripted receiver on 127.0.0.2; then its idle RSS
(that of the qemu process, so an upper bound) is printed. Usage:
smoke.py BINARY QEMU SYSROOT ("-" for none: a native or static binary).

Loopback high ports only; the server is stopped before exiting."""

import os
import poplib
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from peers import Unbound  # noqa: E402
from sink import Sink  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary, qemu, sysroot = sys.argv[1:4]
    # "-": run natively, or with no sysroot (a static binary).
    run = [binary] if qemu == "-" else [qemu, binary] if sysroot == "-" else [qemu, "-L", sysroot, binary]
    if sysroot == "-":
        # A static binary loads nothing: no interpreter, no libraries.
        out = subprocess.run(["file", "-L", binary], capture_output=True, text=True).stdout
        assert "statically linked" in out or "static-pie linked" in out, out
    with tempfile.TemporaryDirectory(prefix="postling-arm-") as d:
        base = Path(d)
        smtp, pop3 = free_port(), free_port()
        dns = Unbound(base, '    local-zone: "far.test." static\n'
                            '    local-data: "far.test. MX 10 mx.far.test."\n'
                            '    local-data: "mx.far.test. A 127.0.0.2"\n')
        sink = Sink("127.0.0.2")
        conf = base / "postling.conf"
        conf.write_text("domains = example.test\nusers_file = users\n")
        (base / "users").write_text("")
        subprocess.run([*run, "user", "add", "alice@example.test", "-c", str(conf)],
                       input="arm pw\n", text=True, check=True, capture_output=True)
        conf.write_text(
            "hostname = arm.example.test\ndomains = example.test\nrun_as = root\n"
            f"data_dir = data\nusers_file = users\nlisten_smtp = 127.0.0.1:{smtp}\n"
            f"dns_servers = 127.0.0.1:{dns.port}\noutbound_port = {sink.port}\n"
            "trusted_networks = 127.0.0.0/8\n"
            f"listen_pop3 = 127.0.0.1:{pop3}\n")
        # serve restarts itself with this variable set; qemu-user without
        # binfmt_misc cannot run the ARM binary that way, so set it here.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        server = subprocess.Popen([*run, "serve", "-c", str(conf)],
                                  stderr=subprocess.PIPE, text=True, env=env)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", pop3), 1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            body = b"Subject: from ARM\r\n\r\nHello from qemu.\r\n.dot line\r\n"
            with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as c:
                c.sendmail("a@remote.test", ["alice@example.test"], body)
            p = poplib.POP3("127.0.0.1", pop3, timeout=30)
            p.user("alice@example.test")
            p.pass_("arm pw")
            count, _ = p.stat()
            lines = p.retr(1)[1]
            p.quit()
            got = b"\r\n".join(lines) + b"\r\n"
            assert count == 1, count
            assert got.endswith(body), got
            # Out to another domain, by MX, over the client state machine.
            with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as c:
                c.sendmail("alice@example.test", ["bob@far.test"], body)
            for _ in range(600):
                if sink.messages:
                    break
                time.sleep(0.05)
            assert sink.messages and sink.messages[0][1] == ["bob@far.test"], sink.messages
            assert sink.messages[0][2].endswith(body), sink.messages[0][2]
            time.sleep(1)
            rss = [l for l in open(f"/proc/{server.pid}/status") if l.startswith("VmRSS")]
            print(f"ok: {Path(binary).parent.parent.name} SMTP in, POP3 out, SMTP out by MX; "
                  f"idle {rss[0].split(':')[1].strip()} ({'native' if qemu == '-' else 'qemu process'})")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            sink.stop()
            dns.stop()
    if server.returncode != 0:
        sys.exit(f"server exited {server.returncode}: {server.stderr.read()}")


if __name__ == "__main__":
    main()
