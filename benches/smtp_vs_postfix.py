#!/usr/bin/env python3
"""`make bench-smtp`: postling and a private Postfix, side by side on this
machine, fed by Postfix's smtp-source over loopback.

For each cell (parallel sessions x message size) both servers receive
the same messages; the clock stops when every message is a file in the
recipient's Maildir (for Postfix that includes its queue and its virtual
delivery agent: both fsync before they say 250 and before delivery
counts). Prints messages/s for each and the ratio, then postling's RSS
idle, with 1,000 idle SMTP connections, and with 1,000 idle TLS
connections (handshake done). BENCH_ONLY_RSS=1 skips the throughput
cells.

Each cell runs twice: on this machine's disk as it is, and as a slow
card: with the fsync-delay shim (../shared/tools/fsync-delay) preloaded
into both servers, every fsync, fdatasync and syncfs takes
BENCH_FSYNC_US microseconds more (default 10000, a Raspberry Pi's SD
card). BENCH_SLOW=0 skips the slow-card runs, BENCH_NATIVE=0 the others.

Everything listens on 127.0.0.1 high ports; every process started here is
stopped here."""

import os
import pwd
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchnet import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/python"))
from peers import start_postfix, stop_postfix  # noqa: E402
POSTLING = ROOT / "target/release/postling"
SESSIONS = [1, 10, 50]
SIZES = [2 * 1024, 100 * 1024]
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "2000"))
FSYNC_US = os.environ.get("BENCH_FSYNC_US", "10000")
SHIM_BUILD = ROOT.parent / "shared/tools/fsync-delay/build.sh"
IDLE_CONNECTIONS = 1000
DEADLINE = 600  # seconds a cell may take before the run is abandoned




def count_files(folder: Path):
    try:
        return len(os.listdir(folder))
    except FileNotFoundError:
        return 0


class Postling:
    name = "postling"

    def __init__(self, base: Path, tls: str = "", slow: dict = None):
        self.base = base
        self.port = free_port()
        self.tls_port = free_port()
        (base / "users").write_text("bench@example.test\n")
        conf = base / "postling.conf"
        conf.write_text(tls.format(port=self.tls_port) + 
            "hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
            "dns_servers = 127.0.0.1:1\n"
            "data_dir = data\nusers_file = users\n"
            f"listen_smtp = 127.0.0.1:{self.port}\n"
            "max_connections = 2000\nmax_connections_per_ip = 2000\n"
            "max_message_size = 10M\n"
        )
        self.proc = subprocess.Popen(
            [str(POSTLING), "serve", "-c", str(conf)],
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn", **(slow or {})},
        )
        wait_port(self.port)

    def maildir(self):
        return self.base / "data/mail/example.test/bench/new"

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Postfix:
    """A private Postfix instance: its own config, queue and data folders,
    delivering with virtual(8) into a Maildir."""

    name = "postfix"

    def __init__(self, base: Path, slow: dict = None):
        self.base = base
        self.port = free_port()
        (base / "vmail").mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(base / "vmail", owner.pw_uid, owner.pw_gid)
        (base / "vmailbox").write_text("bench@example.test example.test/bench/\n")
        # Postfix's daemons keep only the environment it names.
        imported = (f"import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                    f"LD_PRELOAD={slow['LD_PRELOAD']} FSYNC_DELAY_US={slow['FSYNC_DELAY_US']}\n"
                    if slow else "")
        self.conf = start_postfix(base, f"127.0.0.1:{self.port}", f"""
myhostname = postfix-bench.example.test
virtual_mailbox_domains = example.test
virtual_mailbox_base = {base}/vmail
virtual_mailbox_maps = hash:{base}/vmailbox
virtual_uid_maps = static:{owner.pw_uid}
virtual_gid_maps = static:{owner.pw_gid}
virtual_destination_concurrency_limit = 50
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
message_size_limit = 10485760
""" + imported, env=slow, maps=[base / "vmailbox"])

    def maildir(self):
        return self.base / "vmail/example.test/bench/new"

    def stop(self):
        stop_postfix(self.conf)
        time.sleep(1)


def run_cell(server, sessions, size, already):
    """Sends MESSAGES messages; returns messages/s until all are stored."""
    start = time.monotonic()
    source = subprocess.run(
        ["smtp-source", "-s", str(sessions), "-m", str(MESSAGES), "-l", str(size),
         "-d", "-f", "sender@remote.test", "-t", "bench@example.test",
         f"127.0.0.1:{server.port}"],
        capture_output=True, text=True, timeout=DEADLINE,
    )
    if source.returncode != 0:
        raise RuntimeError(f"smtp-source: {source.stderr}")
    want = already + MESSAGES
    while count_files(server.maildir()) < want:
        if time.monotonic() - start > DEADLINE:
            raise RuntimeError(f"{server.name}: only {count_files(server.maildir())} of {want} landed")
        time.sleep(0.01)
    return MESSAGES / (time.monotonic() - start)


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def idle_connections(server, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.recv(512)  # the greeting: the session exists
        socks.append(s)
    time.sleep(0.5)
    return socks


def make_cert(folder: Path):
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def idle_tls_connections(port, n, cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False
    socks = []
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", port))
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.recv(512)  # the greeting, sent once the handshake is done
        socks.append(s)
    time.sleep(0.5)
    return socks


def measure_rss(base: Path):
    work = base / "rss"
    work.mkdir()
    cert, key = make_cert(work)
    tls = (f"tls_cert = {cert}\ntls_key = {key}\n"
           "listen_submissions = 127.0.0.1:{port}\n")
    server = Postling(work, tls)
    try:
        time.sleep(0.5)
        idle = rss_kib(server.pids())
        socks = idle_connections(server, IDLE_CONNECTIONS)
        plain = rss_kib(server.pids())
        for s in socks:
            s.close()
        time.sleep(0.5)
        before_tls = rss_kib(server.pids())
        socks = idle_tls_connections(server.tls_port, IDLE_CONNECTIONS, cert)
        with_tls = rss_kib(server.pids())
        for s in socks:
            s.close()
    finally:
        server.stop()
    print(f"postling RSS idle {idle} KiB ({idle / 1024:.1f} MiB); "
          f"with {IDLE_CONNECTIONS} idle SMTP connections {plain} KiB: "
          f"{(plain - idle) / IDLE_CONNECTIONS:.1f} KiB per connection")
    print(f"with {IDLE_CONNECTIONS} idle TLS connections {with_tls} KiB: "
          f"{(with_tls - before_tls) / IDLE_CONNECTIONS:.1f} KiB per connection")


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    base = Path(tempfile.mkdtemp(prefix="postling-bench-"))
    base.chmod(0o755)  # Postfix daemons run as user postfix
    results = []
    cells = [] if os.environ.get("BENCH_ONLY_RSS") else SESSIONS
    modes = []
    if os.environ.get("BENCH_NATIVE", "1") != "0":
        modes.append(("native", None))
    if os.environ.get("BENCH_SLOW", "1") != "0":
        shim = subprocess.run(["sh", str(SHIM_BUILD)], capture_output=True,
                              text=True, check=True).stdout.strip()
        modes.append((f"fsync+{int(FSYNC_US) // 1000}ms",
                      {"LD_PRELOAD": shim, "FSYNC_DELAY_US": FSYNC_US}))
    try:
        for sessions in cells:
            for size in SIZES:
                for mode, slow in modes:
                    row = [sessions, size]
                    for cls in (Postling, Postfix):
                        work = base / f"{cls.name}-{sessions}-{size}-{mode}"
                        work.mkdir()
                        server = cls(work, slow=slow)
                        try:
                            row.append(run_cell(server, sessions, size, 0))
                        finally:
                            server.stop()
                        shutil.rmtree(work, ignore_errors=True)
                    results.append(row)
                    s, z, p, f = row
                    print(f"sessions={s:3} size={z // 1024:4}KiB {mode:>12}  "
                          f"postling {p:8.1f} msg/s  postfix {f:8.1f} msg/s  "
                          f"ratio {p / f:5.2f}", flush=True)

        measure_rss(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
