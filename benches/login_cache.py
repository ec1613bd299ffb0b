#!/usr/bin/env python3
"""`make bench-logins`: what a login costs with and without the login
cache (`auth_cache_ttl`), as a webmail that logs in on every page sees
it: one IMAP connection per page, LOGIN timed from the command to its
tagged answer, {SHA512-CRYPT} as Dovecot writes it. Loopback only; the
server started here is stopped here."""

import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchnet import free_port, wait_port
from pop3_vs_dovecot import hash_password

ROOT = Path(__file__).resolve().parents[1]
POSTLING = ROOT / "target/release/postling"
LOGINS = int(os.environ.get("BENCH_LOGINS", "50"))
PASSWORD = "bench"


def timed_login(port) -> float:
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    f.readline()
    start = time.monotonic()
    s.sendall(f"a LOGIN web@example.test {PASSWORD}\r\n".encode())
    while True:
        line = f.readline()
        if line.startswith(b"a "):
            break
    elapsed = time.monotonic() - start
    assert line.startswith(b"a OK"), line
    s.sendall(b"b LOGOUT\r\n")
    s.close()
    return elapsed * 1000


def run(ttl: str):
    base = Path(tempfile.mkdtemp(prefix="postling-login-bench-"))
    port = free_port()
    (base / "users").write_text(f"web@example.test:{hash_password()}\n")
    conf = base / "postling.conf"
    conf.write_text("hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
                    "dns_servers = 127.0.0.1:1\ndata_dir = data\nusers_file = users\n"
                    f"listen_smtp =\nlisten_imap = 127.0.0.1:{port}\n"
                    f"auth_cache_ttl = {ttl}\nmax_connections_per_ip = 1000\n")
    proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(conf)],
                            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        wait_port(port)
        times = [timed_login(port) for _ in range(LOGINS)]
    finally:
        proc.terminate()
        proc.wait(30)
    return times


def main():
    off = run("0")
    on = run("1h")
    print(f"IMAP LOGIN, {{SHA512-CRYPT}}, {LOGINS} logins one after another (ms):")
    print(f"  no cache      median {statistics.median(off):6.2f}   first {off[0]:6.2f}")
    print(f"  auth_cache_ttl = 1h: first {on[0]:6.2f}   median of the rest "
          f"{statistics.median(on[1:]):6.3f}   worst of the rest {max(on[1:]):6.3f}")


if __name__ == "__main__":
    main()
