#!/usr/bin/env python3
"""`make bench-pop3`: postling and a private Dovecot POP3 server side by
side on the same Maildir copy, over loopback.

Throughput: K users in parallel (one client process each) log in, RETR
and DELE every one of their messages, and QUIT; messages/s and MB/s for each server and the
ratio. Memory: 1,000 users logged in and idle at once; the proportional
set size (PSS) of all of Dovecot's processes against postling's one.

Everything listens on 127.0.0.1 high ports; every process started here is
stopped here."""

import os
import poplib
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchnet import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
POSTLING = ROOT / "target/release/postling"
USERS = int(os.environ.get("BENCH_USERS", "10"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "300"))
SIZE = int(os.environ.get("BENCH_SIZE", str(8 * 1024)))
IDLE = int(os.environ.get("BENCH_IDLE", "1000"))
PASSWORD = "bench"
MAIL_USER = "mail"  # Dovecot will not deliver mail as root




def make_maildirs(base: Path, names, messages):
    """Maildirs in {base}/{name}/ with `messages` messages of SIZE octets."""
    line = b"x" * 70 + b"\n"
    body = b"".join(line for _ in range(SIZE // len(line)))
    for name in names:
        for sub in ("tmp", "new", "cur"):
            (base / name / sub).mkdir(parents=True, exist_ok=True)
        for i in range(messages):
            data = (f"Subject: bench {i}\nFrom: a@remote.test\nTo: {name}@example.test\n\n"
                    .encode() + body)
            lf = data.count(b"\n")
            fname = f"{1700000000 + i}.M{i}P1Q{i}.bench,S={len(data)},W={len(data) + lf}"
            (base / name / "new" / fname).write_bytes(data)


def hash_password():
    out = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


class Postling:
    name = "postling"

    def __init__(self, base: Path, users_text: str):
        self.port = free_port()
        (base / "users").write_text(users_text)
        conf = base / "postling.conf"
        conf.write_text(
            "hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
            "dns_servers = 127.0.0.1:1\n"
            "data_dir = data\nusers_file = users\nlisten_smtp =\n"
            f"listen_pop3 = 127.0.0.1:{self.port}\n"
            f"max_connections = {IDLE + 100}\nmax_connections_per_ip = {IDLE + 100}\n")
        self.mail = base / "data/mail/example.test"
        self.proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(conf)],
                                     stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_LOG": "warn"})
        wait_port(self.port)

    def pids(self):
        return [self.proc.pid]

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
        self.port = free_port()
        self.base = base
        owner = pwd.getpwnam(MAIL_USER)
        (base / "users").write_text(users_text)
        self.mail = base / "mail"
        self.mail.mkdir(exist_ok=True)
        (base / "run").mkdir()
        self.conf = base / "dovecot.conf"
        self.conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/run
protocols = pop3
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain
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
service pop3-login {{
  inet_listener pop3 {{
    port = {self.port}
  }}
  process_limit = 200
  client_limit = {IDLE + 100}
}}
service pop3 {{
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
        """Every Dovecot process: master, logins, one per session."""
        out = subprocess.run(["pgrep", "-f", "dovecot|pop3"], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self):
        subprocess.run(["dovecot", "-c", str(self.conf), "stop"], capture_output=True)
        time.sleep(1)


def drain(port, user):
    """One user's whole session, in its own process (no shared GIL)."""
    try:
        p = poplib.POP3("127.0.0.1", port, timeout=120)
        p.user(f"{user}@example.test")
        p.pass_(PASSWORD)
        count, _ = p.stat()
        octets = 0
        for i in range(1, count + 1):
            octets += p.retr(i)[2]
            p.dele(i)
        p.quit()
        return count, octets, None
    except Exception as e:  # reported by the caller, the run fails
        return 0, 0, f"{user}: {e!r}"


def throughput(cls, base: Path, users_text: str):
    names = [f"u{i}" for i in range(USERS)]
    server = None
    try:
        server = cls(base, users_text)
        make_maildirs(server.mail, names, MESSAGES)
        if cls is Dovecot:
            subprocess.run(["chown", "-R", MAIL_USER, str(server.mail)], check=True)
        with ProcessPoolExecutor(max_workers=USERS) as pool:
            # Start the workers before the clock does.
            list(pool.map(time.sleep, [0.01] * USERS))
            start = time.monotonic()
            results = list(pool.map(drain, [server.port] * USERS, names))
            elapsed = time.monotonic() - start
        errors = [r[2] for r in results if r[2]]
        if errors:
            raise RuntimeError(f"{cls.name}: {errors[:3]}")
        count = sum(r[0] for r in results)
        octets = sum(r[1] for r in results)
        if count != USERS * MESSAGES:
            raise RuntimeError(f"{cls.name}: retrieved {count} of {USERS * MESSAGES}")
        left = sum(len(os.listdir(server.mail / n / d)) for n in names for d in ("new", "cur"))
        if left:
            raise RuntimeError(f"{cls.name}: {left} messages not deleted")
        return count / elapsed, octets / elapsed / 1e6
    finally:
        if server:
            server.stop()


def idle_memory(cls, base: Path, users_text: str):
    names = [f"u{i}" for i in range(IDLE)]
    server = None
    socks = []
    try:
        server = cls(base, users_text)
        make_maildirs(server.mail, names, 0)
        if cls is Dovecot:
            subprocess.run(["chown", "-R", MAIL_USER, str(server.mail)], check=True)
        time.sleep(0.5)
        before = pss_kib(server.pids())
        for n in names:
            p = poplib.POP3("127.0.0.1", server.port, timeout=60)
            p.user(f"{n}@example.test")
            p.pass_(PASSWORD)
            socks.append(p)
        time.sleep(1)
        after = pss_kib(server.pids())
        return before, after
    finally:
        for p in socks:
            try:
                p.close()
            except OSError:
                pass
        if server:
            server.stop()


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    base = Path(tempfile.mkdtemp(prefix="postling-pop3-bench-"))
    base.chmod(0o755)
    hashed = hash_password()
    users_text = "".join(f"u{i}@example.test:{hashed}\n" for i in range(max(USERS, IDLE)))
    def both(measure):
        """Runs `measure` against each server in a folder of its own."""
        out = []
        for cls in (Postling, Dovecot):
            work = base / f"{cls.name}-{measure.__name__}"
            work.mkdir()
            out.append(measure(cls, work, users_text))
            shutil.rmtree(work, ignore_errors=True)
        return out

    try:
        (pm, pmb), (dm, dmb) = both(throughput)
        print(f"{USERS} users x {MESSAGES} messages of {SIZE // 1024} KiB, RETR+DELE:")
        print(f"  postling {pm:8.1f} msg/s {pmb:6.1f} MB/s   dovecot {dm:8.1f} msg/s "
              f"{dmb:6.1f} MB/s   ratio {pm / dm:5.2f}")
        (p0, p1), (d0, d1) = both(idle_memory)
        pp, dp = (p1 - p0) / IDLE, (d1 - d0) / IDLE
        print(f"{IDLE} logged-in idle POP3 sessions (PSS, all processes):")
        print(f"  postling {p0} -> {p1} KiB ({pp:.1f} KiB/session)   "
              f"dovecot {d0} -> {d1} KiB ({dp:.1f} KiB/session)   ratio 1/{dp / max(pp, 0.01):.0f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
