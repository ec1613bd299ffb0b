#!/usr/bin/env python3
"""`make bench-memory`: postling's memory (release build) under the
attacks of issue 7 and at rest, from the kernel's own counters (VmRSS,
and VmHWM for peaks, in /proc/PID/status).

1. Idle RSS at start.
2. 100 clients (max_connections, each from its own 127.0.0.x) send a
   20 MiB message each, slowly and all at once: peak RSS.
3. One logged-in POP3 client pipelines 100,000 UIDL commands against a
   2,000-message mailbox and never reads: peak RSS.
4. RSS at rest after a burst of 10,000 messages.
5. POP3 sessions on a 100,000-message Maildir: RSS while one lasts
   (bytes per message) and after they end.

Each scenario runs on a fresh server. Everything listens on 127.0.0.1 (or
127.0.0.x as a source); every process started here is stopped here."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchnet import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
POSTLING = ROOT / "target/release/postling"
TARGETS = {"start": 4096, "attack": 32 * 1024, "rest": 8 * 1024, "per_msg": 128}


def kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Postling:
    def __init__(self, base: Path, extra: str = "", users: str = ""):
        self.base = base
        self.smtp, self.pop3 = free_port(), free_port()
        (base / "users").write_text(users or "alice@example.test\nbob@example.test\n")
        (base / "postling.conf").write_text(
            "hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
            "dns_servers = 127.0.0.1:1\n"
            f"data_dir = data\nusers_file = users\nlisten_smtp = 127.0.0.1:{self.smtp}\n"
            f"listen_pop3 = 127.0.0.1:{self.pop3}\nmin_free_space = 0\n" + extra)
        self.proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(base / "postling.conf")],
                                     stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
        wait_port(self.smtp)
        time.sleep(0.3)

    def rss(self):
        return kib(self.proc.pid, "VmRSS")

    def peak(self):
        return kib(self.proc.pid, "VmHWM")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def reply(f):
    while True:
        line = f.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line


def big_messages(base):
    s = Postling(base)
    try:
        line = b"z" * 78 + b"\r\n"
        chunk = line * (1024 * 1024 // len(line))  # ~1 MiB
        clients = []
        for i in range(100):
            c = socket.create_connection(("127.0.0.1", s.smtp), timeout=120,
                                         source_address=(f"127.0.0.{i + 2}", 0))
            f = c.makefile("rb")
            reply(f)
            c.sendall(b"EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
            for _ in range(4):
                reply(f)
            clients.append((c, f))
        start = time.time()
        for _ in range(20):  # 20 rounds of 1 MiB each: all 100 grow together
            for c, _ in clients:
                c.sendall(chunk)
            time.sleep(0.05)
        for c, f in clients:
            c.sendall(b".\r\n")
        ok = sum(reply(f).startswith(b"250") for c, f in clients)
        for c, _ in clients:
            c.close()
        took = time.time() - start
        return {"peak_kib": s.peak(), "stored": ok, "seconds": round(took, 1)}
    finally:
        s.stop()


def make_maildir(folder: Path, count: int):
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    text = b"Subject: m\nFrom: a@remote.test\n\nhello\n"
    names = folder / "cur"
    for i in range(count):
        name = f"{1700000000 + i}.M{i}P1Q{i}.bench.example.test,S={len(text)},W={len(text) + 4}:2,S"
        with open(names / name, "wb") as f:
            f.write(text)


def pop3_users(base: Path):
    conf = base / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (base / "users").write_text("bob@example.test\n")
    subprocess.run([str(POSTLING), "user", "add", "alice@example.test", "-c", str(conf)],
                   input="pw\n", capture_output=True, text=True, check=True)
    return (base / "users").read_text()


def pop3_flood(base):
    users = pop3_users(base)
    make_maildir(base / "data/mail/example.test/alice", 2000)
    s = Postling(base, users=users)
    try:
        c = socket.create_connection(("127.0.0.1", s.pop3), timeout=30)
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"USER alice@example.test\r\nPASS pw\r\n")
        f.readline()
        assert f.readline().startswith(b"+OK 2000")
        # Verifying an {ARGON2ID} password takes 19 MiB for a moment.
        after_login = s.peak()
        payload = b"UIDL\r\n" * 100_000
        c.setblocking(False)
        sent, end = 0, time.time() + 10
        while sent < len(payload) and time.time() < end:
            try:
                sent += c.send(payload[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)
        time.sleep(1)
        result = {"peak_kib": s.peak(), "peak_after_login_kib": after_login,
                  "rss_kib": s.rss(), "commands_sent": sent // 6}
        c.close()
        return result
    finally:
        s.stop()


def burst(base):
    s = Postling(base, extra="max_connections_per_ip = 20\n")
    try:
        body = b"Subject: burst\r\n\r\n" + (b"b" * 70 + b"\r\n") * 40
        def sender(n):
            c = socket.create_connection(("127.0.0.1", s.smtp), timeout=60)
            f = c.makefile("rb")
            reply(f)
            c.sendall(b"EHLO c\r\n")
            reply(f)
            for _ in range(n):
                c.sendall(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
                reply(f), reply(f), reply(f)
                c.sendall(body + b".\r\n")
                assert reply(f).startswith(b"250")
            c.sendall(b"QUIT\r\n")
            c.close()
        threads = [threading.Thread(target=sender, args=(1000,)) for _ in range(10)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - start
        time.sleep(2)
        return {"rest_kib": s.rss(), "peak_kib": s.peak(), "msgs_per_s": round(10_000 / took)}
    finally:
        s.stop()


def big_mailbox(base):
    users = pop3_users(base)
    make_maildir(base / "data/mail/example.test/alice", 100_000)
    s = Postling(base, users=users)
    try:
        before = s.rss()
        during, logins = [], []
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", s.pop3), timeout=60)
            f = c.makefile("rb")
            f.readline()
            t0 = time.time()
            c.sendall(b"USER alice@example.test\r\nPASS pw\r\n")
            f.readline()
            assert f.readline().startswith(b"+OK 100000")
            logins.append(round(time.time() - t0, 2))
            during.append(s.rss())
            c.sendall(b"UIDL\r\n")
            lines = 0
            while f.readline() != b".\r\n":
                lines += 1
            c.sendall(b"QUIT\r\n")
            f.readline()
            c.close()
        time.sleep(1)
        after = s.rss()
        per_msg = (max(during) - before) * 1024 / 100_000
        return {"before_kib": before, "during_kib": max(during), "after_kib": after,
                "bytes_per_msg": round(per_msg), "login_s": logins}
    finally:
        s.stop()


def idle(base):
    s = Postling(base)
    try:
        time.sleep(0.5)
        return {"rss_kib": s.rss()}
    finally:
        s.stop()


def main():
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    results = {}
    for name, fn in [("idle at start", idle), ("100 x 20 MiB slowly", big_messages),
                     ("POP3 pipelining 100k UIDL", pop3_flood),
                     ("after 10,000-message burst", burst),
                     ("100,000-message POP3 mailbox", big_mailbox)]:
        with tempfile.TemporaryDirectory(prefix="postling-mem-") as d:
            results[name] = fn(Path(d))
            print(f"{name}: {results[name]}", flush=True)
    t = TARGETS
    checks = [
        ("idle at start <= 4 MiB", results["idle at start"]["rss_kib"] <= t["start"]),
        ("100 x 20 MiB peak <= 32 MiB", results["100 x 20 MiB slowly"]["peak_kib"] <= t["attack"]),
        ("POP3 flood peak <= 32 MiB", results["POP3 pipelining 100k UIDL"]["peak_kib"] <= t["attack"]),
        ("rest after burst <= 8 MiB", results["after 10,000-message burst"]["rest_kib"] <= t["rest"]),
        ("after big-mailbox sessions <= 8 MiB",
         results["100,000-message POP3 mailbox"]["after_kib"] <= t["rest"]),
        ("<= 128 bytes per message in session",
         results["100,000-message POP3 mailbox"]["bytes_per_msg"] <= t["per_msg"]),
    ]
    for what, ok in checks:
        print(f"{'met ' if ok else 'MISSED'} {what}")


if __name__ == "__main__":
    main()
