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

postling runs each cell three ways: as it is, with its inbound checks
on, and with a typical Sieve script (SIEVE_RULES: 20 rules sorting
lists, senders and subjects, none matching, so every test is evaluated
and the message kept) as the recipient's active script (plain, checks,
sieve, sieve, checks, plain; the best of each: this machine is shared
and noisy). The checks are
(SPF, DKIM with an RSA 2048 signature, DMARC, ARC, iprev) against a
private Unbound serving the sender's records, caches warm: every message
is the same DKIM-signed message (smtp-source -F), so each one is checked
in full. For both, the CPU postling spent per message is printed.

Each cell runs twice: on this machine's disk as it is, and as a slow
card: with the fsync-delay shim (../shared/tools/fsync-delay) preloaded
into both servers, every fsync, fdatasync and syncfs takes
BENCH_FSYNC_US microseconds more (default 10000, a Raspberry Pi's SD
card). BENCH_SLOW=0 skips the slow-card runs, BENCH_NATIVE=0 the others;
BENCH_CELLS=10x2,50x100 runs only those cells (sessions x KiB).

Every server's run gets a new ext4 file system, loop-mounted from an
image on this disk (benchnet.FreshDisk says why: inode allocation after
the previous run's deletions swamped the figures).

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

from benchnet import FreshDisk, free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/python"))
from peers import start_postfix, stop_postfix  # noqa: E402
from test_dns import Unbound  # noqa: E402
POSTLING = ROOT / "target/release/postling"
SESSIONS = [1, 10, 50]
SIZES = [2 * 1024, 100 * 1024]
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "2000"))
FSYNC_US = os.environ.get("BENCH_FSYNC_US", "10000")
SHIM_BUILD = ROOT.parent / "shared/tools/fsync-delay/build.sh"
IDLE_CONNECTIONS = 1000
SIEVE_RULES = "\n".join(
    ['require ["fileinto", "envelope", "imap4flags", "variables"];']
    + [f'if header :contains "list-id" "list{i}.example.org" {{ fileinto "Lists"; stop; }}' for i in range(5)]
    + [f'if address :is "from" "boss{i}@work.example" {{ addflag "\\\\Flagged"; }}' for i in range(5)]
    + [f'if address :domain :is "from" "shop{i}.example" {{ fileinto "Shopping"; }}' for i in range(5)]
    + [f'if header :matches "subject" "*[ticket-{i}*]*" {{ set "t" "${{2}}"; fileinto "Tickets"; }}' for i in range(5)]
) + "\n"
DEADLINE = 600  # seconds a cell may take before the run is abandoned




def chosen_cells():
    """(sessions, size) pairs: every one, or BENCH_CELLS's, such as
    `10x2,50x100` (sizes in KiB)."""
    every = [(s, z) for s in SESSIONS for z in SIZES]
    named = os.environ.get("BENCH_CELLS")
    if not named:
        return every
    picked = []
    for cell in named.split(","):
        s, z = cell.strip().split("x")
        picked.append((int(s), int(z) * 1024))
    return picked


def count_files(folder: Path):
    try:
        return len(os.listdir(folder))
    except FileNotFoundError:
        return 0


class Postling:
    name = "postling"

    def __init__(self, base: Path, tls: str = "", slow: dict = None, dns_port: int = 0,
                 sieve: str = ""):
        self.base = base
        if sieve:
            root = base / "data/mail/example.test/bench"
            (root / "sieve").mkdir(parents=True)
            (root / "sieve/main.sieve").write_text(sieve)
            (root / ".dovecot.sieve").symlink_to("sieve/main.sieve")
        # Loopback is trusted by default (as Postfix's mynetworks): not here.
        # The checks before content (greet_delay) are not what is measured:
        # off, as they are for loopback with the checks off.
        checks = (f"dns_servers = 127.0.0.1:{dns_port}\ntrusted_networks =\ngreet_delay = 0\n" if dns_port
                  else "dns_servers = 127.0.0.1:1\ninbound_checks = none\n")
        self.port = free_port()
        self.tls_port = free_port()
        (base / "users").write_text("bench@example.test\n")
        conf = base / "postling.conf"
        conf.write_text(tls.format(port=self.tls_port) + 
            "hostname = bench.example.test\ndomains = example.test\nrun_as = root\n"
            + checks +
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

    def cpu_seconds(self):
        """User and system time of every thread so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def run_cell(server, sessions, size, already, message_file=None):
    """Sends MESSAGES messages; returns messages/s until all are stored."""
    start = time.monotonic()
    body = ["-F", str(message_file)] if message_file else ["-l", str(size)]
    source = subprocess.run(
        ["smtp-source", "-s", str(sessions), "-m", str(MESSAGES), *body,
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


def run_cell_once(server, message_file):
    """One message, checked: its Authentication-Results must show every
    check passing, or the figures would measure failures."""
    subprocess.run(["smtp-source", "-m", "1", "-F", str(message_file), "-f", "sender@remote.test",
                    "-t", "bench@example.test", f"127.0.0.1:{server.port}"],
                   check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while count_files(server.maildir()) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up message did not land")
        time.sleep(0.01)
    stored = next(server.maildir().iterdir()).read_text()
    for want in ("spf=pass", "dkim=pass", "dmarc=pass", "iprev=pass"):
        if want not in stored:
            raise RuntimeError(f"checks did not pass ({want}):\n{stored[:1500]}")


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


SIGN = r"""
import sys, dkim
size, key = int(sys.argv[1]), open(sys.argv[2], "rb").read()
line = b"The quarterly figures are attached; the board meets on Thursday.  \r\n"
body = line * (size // len(line) + 1)
msg = (b"From: Sender <sender@remote.test>\r\nTo: bench@example.test\r\n"
       b"Subject: figures\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <bench@remote.test>\r\n\r\n" + body[:size])
sig = dkim.sign(msg, b"bench", b"remote.test", key,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write((sig + msg).replace(b"\r\n", b"\n"))
"""


def sender_zone(base: Path):
    """Unbound serving remote.test: SPF for 127.0.0.1, its DKIM key (RSA
    2048), DMARC p=reject, and a PTR for 127.0.0.1 that matches; and
    the messages, signed, one per size."""
    keys = base / "keys"
    keys.mkdir()
    subprocess.run(["/usr/bin/dknewkey", str(keys / "bench")], check=True,
                   capture_output=True, timeout=120)
    record = (keys / "bench.dns").read_text().strip()
    chunks = " ".join(f'"{record[i:i + 250]}"' for i in range(0, len(record), 250))
    dns = Unbound(base, f"""    local-zone: "remote.test." static
    local-data: 'remote.test. TXT "v=spf1 ip4:127.0.0.1 -all"'
    local-data: 'bench._domainkey.remote.test. TXT {chunks}'
    local-data: '_dmarc.remote.test. TXT "v=DMARC1; p=reject"'
    local-data: 'mx.remote.test. A 127.0.0.1'
    local-data-ptr: "127.0.0.1 mx.remote.test"
""")
    files = {}
    for size in SIZES:
        out = subprocess.run(["/usr/bin/python3", "-c", SIGN, str(size), str(keys / "bench.key")],
                             capture_output=True, check=True, timeout=120)
        files[size] = base / f"signed-{size}.eml"
        files[size].write_bytes(out.stdout)
    return dns, files


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    base = Path(tempfile.mkdtemp(prefix="postling-bench-"))
    base.chmod(0o755)  # Postfix daemons run as user postfix
    results = []
    cells = [] if os.environ.get("BENCH_ONLY_RSS") else chosen_cells()
    dns, signed = sender_zone(base)
    modes = []
    if os.environ.get("BENCH_NATIVE", "1") != "0":
        modes.append(("native", None))
    if os.environ.get("BENCH_SLOW", "1") != "0":
        shim = subprocess.run(["sh", str(SHIM_BUILD)], capture_output=True,
                              text=True, check=True).stdout.strip()
        modes.append((f"fsync+{int(FSYNC_US) // 1000}ms",
                      {"LD_PRELOAD": shim, "FSYNC_DELAY_US": FSYNC_US}))
    fresh = True
    try:
        for sessions, size in cells:
            for mode, slow in modes:
                row = [sessions, size]
                # Off, on, on, off, best of each: this machine is shared
                # and noisy, and the order gives neither the earlier,
                # faster slots. Each run has a file system of its own.
                best = {"plain": (0, 0), "checks": (0, 0), "sieve": (0, 0)}
                for attempt, kind in enumerate(("plain", "checks", "sieve", "sieve", "checks", "plain")):
                    checks = kind == "checks"
                    work = base / f"postling-{sessions}-{size}-{mode}-{attempt}"
                    disk = FreshDisk(work)
                    fresh &= disk.fresh
                    server = None
                    try:
                        server = Postling(work, slow=slow, dns_port=dns.port if checks else 0,
                                          sieve=SIEVE_RULES if kind == "sieve" else "")
                        if checks:
                            # Warm the caches, and check the checks pass.
                            run_cell_once(server, signed[size])
                        cpu = server.cpu_seconds()
                        rate = run_cell(server, sessions, size, 1 if checks else 0, signed[size])
                        per = (server.cpu_seconds() - cpu) / MESSAGES * 1000
                        if rate > best[kind][0]:
                            best[kind] = (rate, per)
                    finally:
                        if server:
                            server.stop()
                        disk.release()
                    shutil.rmtree(work, ignore_errors=True)
                row += [*best["plain"], *best["checks"], *best["sieve"]]
                work = base / f"postfix-{sessions}-{size}-{mode}"
                disk = FreshDisk(work)
                fresh &= disk.fresh
                server = None
                try:
                    server = Postfix(work, slow=slow)
                    row.append(run_cell(server, sessions, size, 0, signed[size]))
                finally:
                    if server:
                        server.stop()
                    disk.release()
                shutil.rmtree(work, ignore_errors=True)
                results.append(row)
                s, z, p, pcpu, c, ccpu, v, vcpu, f = row
                print(f"sessions={s:3} size={z // 1024:4}KiB {mode:>12}  "
                      f"postling {p:8.1f} msg/s ({pcpu:.2f} ms CPU/msg)  "
                      f"checks on {c:8.1f} msg/s ({ccpu:.2f} ms CPU/msg, {c / p:4.2f}x)  "
                      f"sieve {v:8.1f} msg/s ({vcpu:.2f} ms CPU/msg, {v / p:4.2f}x)  "
                      f"postfix {f:8.1f} msg/s  ratio {p / f:5.2f}", flush=True)

        if not fresh:
            print("(no loop mount here: the runs shared this machine's file system)")
        measure_rss(base)
    finally:
        dns.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
