#!/usr/bin/env python3
"""`make bench-imap`: postling and a private Dovecot IMAP server side by
side, same users (SHA512-CRYPT for both), same messages, over loopback.

1. imaptest stress (Dovecot's own tester) at 10 and 50 clients: ops/s,
   commands per server CPU-second, imaptest errors.
2. Memory per logged-in idle session with INBOX selected (IDLE sessions
   of BENCH_IDLE users; PSS of every server process).
3. postling's total RSS with BENCH_MANY (10,000) IDLE sessions.
4. SELECT of a 100,000-message INBOX, the first time and again; and a
   POP3 login on the same mailbox, first and again (Dovecot's first
   builds its index).

Everything listens on 127.0.0.1 high ports; every process started here is
stopped here."""

import os
import pwd
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchnet import free_port, wait_port
from pop3_vs_dovecot import hash_password, pss_kib

ROOT = Path(__file__).resolve().parents[1]
POSTLING = ROOT / "target/release/postling"
TOOLS = Path(os.environ.get("IMAPTEST_TOOLS", ROOT.parent / "shared/tools/imaptest"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
IDLE = int(os.environ.get("BENCH_IDLE", "1000"))
MANY = int(os.environ.get("BENCH_MANY", "10000"))
BIG = int(os.environ.get("BENCH_BIG", "100000"))
STRESS_USERS = 100
PASSWORD = "bench"
MAIL_USER = "mail"


class Postling:
    name = "postling"

    def __init__(self, base: Path, users_text: str):
        self.port, self.pop3 = free_port(), free_port()
        (base / "users").write_text(users_text)
        conf = base / "postling.conf"
        conf.write_text(
            "hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
            "dns_servers = 127.0.0.1:1\n"
            "data_dir = data\nusers_file = users\nlisten_smtp =\n"
            f"listen_imap = 127.0.0.1:{self.port}\nlisten_pop3 = 127.0.0.1:{self.pop3}\n"
            f"max_connections = {MANY + 100}\nmax_connections_per_ip = {MANY + 100}\n")
        self.mail = base / "data/mail/example.test"
        self.mail.mkdir(parents=True)
        self.proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(conf)],
                                     stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_LOG": "warn"})
        wait_port(self.port)

    def pids(self):
        return [self.proc.pid]

    def main_pid(self):
        return self.proc.pid

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Dovecot:
    name = "dovecot"

    def __init__(self, base: Path, users_text: str):
        self.port, self.pop3 = free_port(), free_port()
        owner = pwd.getpwnam(MAIL_USER)
        (base / "users").write_text(users_text)
        self.mail = base / "mail"
        self.mail.mkdir()
        subprocess.run(["chown", MAIL_USER, str(self.mail)], check=True)
        (base / "run").mkdir()
        self.conf = base / "dovecot.conf"
        self.conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/run
protocols = imap pop3
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {base}/dovecot.log
mail_location = maildir:{self.mail}/%n
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={self.mail}/%n
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_limit = 200
  client_limit = {IDLE + 100}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap {{
  process_limit = {IDLE + 100}
}}
service anvil {{
  client_limit = {3 * IDLE + 300}
}}
default_client_limit = {IDLE + 200}
mail_max_userip_connections = {IDLE + 100}
""")
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        wait_port(self.port)

    def pids(self):
        out = subprocess.run(["pgrep", "-f", "dovecot|imap|pop3"], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def main_pid(self):
        out = subprocess.run(["pgrep", "-x", "dovecot"], capture_output=True, text=True)
        return int(out.stdout.split()[0])

    def stop(self):
        subprocess.run(["dovecot", "-c", str(self.conf), "stop"], capture_output=True)
        time.sleep(1)


def make_maildir(folder: Path, count: int, owner=None):
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    text = b"Subject: m\nFrom: a@remote.test\n\nhello\n"
    for i in range(count):
        name = f"{1700000000 + i}.M{i}P1Q{i}.bench,S={len(text)},W={len(text) + 4}"
        (folder / "cur" / (name + ":2,S")).write_bytes(text)
    if owner:
        subprocess.run(["chown", "-R", owner, str(folder)], check=True)


def stress(cls, base, users_text, clients):
    server = cls(base, users_text)
    try:
        owner = MAIL_USER if cls is Dovecot else None
        for i in range(1, STRESS_USERS + 1):
            make_maildir(server.mail / f"u{i}", 0, owner)
        out = subprocess.run(
            [str(TOOLS / "run.sh"), "stress", "127.0.0.1", str(server.port),
             "u%d@example.test", PASSWORD, str(SECONDS), str(clients)],
            capture_output=True, text=True, timeout=SECONDS * 4 + 300,
            env={**os.environ, "SERVER_PID": str(server.main_pid())})
        text = out.stdout
        ops = float(re.search(r"= ([\d.]+) ops/s", text).group(1))
        errors = int(re.search(r"imaptest: (\d+)", text).group(1))
        per_cpu = re.search(r"(\d+) commands per server CPU-second", text)
        return ops, int(per_cpu.group(1)) if per_cpu else 0, errors
    finally:
        server.stop()


def login_select_idle(port, user, sock_list):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {user} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError(f"{user}: closed")
        if line.startswith(b"+"):
            break
        if line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD")):
            raise RuntimeError(f"{user}: {line!r}")
    sock_list.append((s, f))


def open_idle(port, users):
    socks, errors = [], []
    chunks = [users[i::8] for i in range(8)]

    def worker(names):
        for n in names:
            try:
                login_select_idle(port, n, socks)
            except Exception as e:  # reported below
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[:3])
    return socks


def idle_memory(cls, base, users_text, count):
    server = cls(base, users_text)
    socks = []
    try:
        owner = MAIL_USER if cls is Dovecot else None
        names = [f"i{i}" for i in range(count)]
        for n in names:
            make_maildir(server.mail / n, 3, owner)
        time.sleep(0.5)
        before = pss_kib(server.pids())
        socks = open_idle(server.port, [f"{n}@example.test" for n in names])
        time.sleep(1)
        after = pss_kib(server.pids())
        rss = sum(int(l.split()[1]) for pid in server.pids()
                  for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if l.startswith("VmRSS:"))
        return before, after, rss
    finally:
        for s, _ in socks:
            s.close()
        server.stop()


def timed_select(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN big@example.test {PASSWORD}\r\n".encode())
    while not f.readline().startswith(b"a "):
        pass
    t = time.monotonic()
    s.sendall(b"b SELECT INBOX\r\n")
    exists = None
    while True:
        line = f.readline()
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        if line.startswith(b"b "):
            break
    elapsed = time.monotonic() - t
    s.sendall(b"c LOGOUT\r\n")
    s.close()
    assert exists == BIG, exists
    return elapsed


def timed_pop3(port):
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    f = s.makefile("rb")
    f.readline()
    # Until STAT is answered: a server may say +OK to PASS before it has
    # listed the mailbox.
    s.sendall(f"USER big@example.test\r\nPASS {PASSWORD}\r\nSTAT\r\n".encode())
    f.readline()
    answer = f.readline()
    stat = f.readline()
    elapsed = time.monotonic() - t
    assert stat.startswith(f"+OK {BIG} ".encode()), stat
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    assert answer.startswith(b"+OK"), answer
    return elapsed


def big_mailbox(cls, base, users_text):
    server = cls(base, users_text)
    try:
        make_maildir(server.mail / "big", BIG, MAIL_USER if cls is Dovecot else None)
        select = [timed_select(server.port) for _ in range(2)]
        shutil.rmtree(server.mail / "big")
        make_maildir(server.mail / "big", BIG, MAIL_USER if cls is Dovecot else None)
        pop3 = [timed_pop3(server.pop3) for _ in range(2)]
        return select, pop3
    finally:
        server.stop()


def idle_wake(cls, base, users_text):
    """Milliseconds from our SMTP 250 to the EXISTS an IDLE session gets
    (postling only: Dovecot here has no SMTP of its own)."""
    import smtplib
    server = cls(base, users_text)
    try:
        smtp = free_port()
        server.stop()
        conf = base / "postling.conf"
        conf.write_text(conf.read_text().replace("listen_smtp =\n", f"listen_smtp = 127.0.0.1:{smtp}\n"))
        server.proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(conf)],
                                       stderr=subprocess.DEVNULL)
        wait_port(server.port)
        c = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        f = c.makefile("rb")
        f.readline()
        c.sendall(f"a LOGIN i0@example.test {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
        while not f.readline().startswith(b"+"):
            pass
        times = []
        for i in range(20):
            with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as m:
                m.sendmail("x@y.test", ["i0@example.test"], f"Subject: {i}\r\n\r\nhi\r\n")
                t = time.monotonic()
            while b"EXISTS" not in f.readline():
                pass
            times.append((time.monotonic() - t) * 1000)
        c.close()
        return sorted(times)[len(times) // 2], max(times)
    finally:
        server.stop()


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = MANY + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit(f"open files limit {hard} < {want}: raise it (ulimit -Hn) or set BENCH_MANY")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    if not (TOOLS / "run.sh").exists():
        sys.exit(f"imaptest tools not found at {TOOLS} (set IMAPTEST_TOOLS)")
    subprocess.run([str(TOOLS / "build.sh")], check=True, stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix="postling-imap-bench-"))
    base.chmod(0o755)
    hashed = hash_password()
    names = ([f"u{i}" for i in range(1, STRESS_USERS + 1)] + [f"i{i}" for i in range(MANY)]
             + ["big"])
    users_text = "".join(f"{n}@example.test:{hashed}\n" for n in names)

    def run(measure, cls, *args):
        work = base / f"{cls.name}-{measure.__name__}-{'-'.join(map(str, args))}"
        work.mkdir()
        try:
            return measure(cls, work, users_text, *args)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    try:
        for clients in (10, 50):
            (po, pc, pe), (do, dc, de) = (run(stress, c, clients) for c in (Postling, Dovecot))
            print(f"imaptest stress, {clients} clients, {SECONDS} s:")
            print(f"  postling {po:7.1f} ops/s {pc:6d} cmds/CPU-s {pe} errors   "
                  f"dovecot {do:7.1f} ops/s {dc:6d} cmds/CPU-s {de} errors   "
                  f"ops ratio {po / do:4.2f}, CPU per op ratio {dc / max(pc, 1):4.2f}")
        (p0, p1, _), (d0, d1, _) = (run(idle_memory, c, IDLE) for c in (Postling, Dovecot))
        pp, dp = (p1 - p0) / IDLE, (d1 - d0) / IDLE
        print(f"{IDLE} logged-in IDLE sessions, INBOX selected (PSS, all processes):")
        print(f"  postling {pp:.1f} KiB/session   dovecot {dp:.1f} KiB/session   ratio 1/{dp / max(pp, 0.01):.0f}")
        _, _, rss = run(idle_memory, Postling, MANY)
        print(f"{MANY} IDLE sessions: postling RSS {rss / 1024:.1f} MiB")
        median, worst = run(idle_wake, Postling)
        print(f"IDLE woken by our own delivery: {median:.1f} ms after the 250 (median), {worst:.1f} ms at worst")
        (psel, ppop), (dsel, dpop) = (run(big_mailbox, c) for c in (Postling, Dovecot))
        print(f"{BIG}-message INBOX, first and second time (s):")
        print(f"  SELECT    postling {psel[0]:.2f} {psel[1]:.2f}   dovecot {dsel[0]:.2f} {dsel[1]:.2f}")
        print(f"  POP3 login postling {ppop[0]:.2f} {ppop[1]:.2f}   dovecot {dpop[0]:.2f} {dpop[1]:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
