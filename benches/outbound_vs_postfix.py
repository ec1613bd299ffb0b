#!/usr/bin/env python3
"""`make bench-outbound`: postling and a private Postfix, side by side on
this machine, each sending the same queued messages to Postfix's
smtp-sink on 127.0.0.5.

Both start with BENCH_MESSAGES (default 3000) messages of BENCH_SIZE
octets (default 4096) already queued, and the clock runs from the queue
being let go until it is empty (each server removes a message only after
the sink's 250). postling's queue is written as files before it starts
(its queue run at start lets it go, and its start-up is counted);
Postfix's is filled through its own smtpd while `defer_transports =
smtp` holds it, then let go (the reload not counted) with `postqueue
-f`. postling finds the sink by MX through a private Unbound;
Postfix goes straight to `relayhost = [127.0.0.5]:port` (no DNS at all).
Both may open BENCH_CONCURRENCY (default 10) connections to the sink.

CPU: each server runs in its own cpuacct cgroup (v1) and its CPU time
over the run is divided by the messages sent. Memory per outbound
connection: each sends BENCH_TARPIT (default 200) messages to a tarpit
that accepts connections and never answers; postling's RSS growth is
divided by the connections open, Postfix's smtp(8) processes' PSS by
their number.

The throughput runs twice: on this machine's disk, and as a slow card
with the fsync-delay shim (../shared/tools/fsync-delay) preloaded into
both servers, every fsync taking BENCH_FSYNC_US (default 10000) more
microseconds; BENCH_SLOW=0 skips that, BENCH_MEMORY=0 the memory part.

Everything listens on loopback; every process started here is stopped
here."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchnet import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/python"))
from peers import Unbound, start_postfix, stop_postfix  # noqa: E402
POSTLING = ROOT / "target/release/postling"
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "3000"))
SIZE = int(os.environ.get("BENCH_SIZE", "4096"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "10"))
TARPIT = int(os.environ.get("BENCH_TARPIT", "200"))
DEADLINE = 600
FSYNC_US = os.environ.get("BENCH_FSYNC_US", "10000")
SHIM_BUILD = ROOT.parent / "shared/tools/fsync-delay/build.sh"
SINK_IP = "127.0.0.5"
CGROUP = Path("/sys/fs/cgroup/cpuacct")


def message(i: int) -> str:
    head = (f"From: bench@example.test\nTo: user@sink.test\nSubject: bench {i}\n"
            f"Message-ID: <bench{i}@example.test>\n\n")
    line = "x" * 75 + "\n"
    return head + line * max(1, (SIZE - len(head)) // len(line))


class Cgroup:
    """A cpuacct cgroup: processes started in it (and their children)
    are counted together."""

    def __init__(self, name: str):
        self.path = CGROUP / f"postling-bench-{name}-{os.getpid()}"
        self.path.mkdir()

    def enter(self):
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def cpu_seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self):
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def wait_until(check, what: str, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out: {what}")


class Tarpit:
    """Accepts connections and never says a word."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((SINK_IP, port))
        self.sock.listen(1024)
        self.held = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.held:
            c.close()


def start_sink(port: int):
    proc = subprocess.Popen(["smtp-sink", "-u", "nobody", f"{SINK_IP}:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 30
    while time.time() < end:
        try:
            socket.create_connection((SINK_IP, port), 1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("smtp-sink did not start")


class Postling:
    name = "postling"

    def __init__(self, base: Path, sink_port: int, dns_port: int, count: int,
                 cgroup: Cgroup, concurrency: int, slow: dict = None):
        self.base = base
        (base / "users").write_text("bench@example.test\n")
        queue = base / "data/queue/new"
        queue.mkdir(parents=True)
        for i in range(count):
            (queue / f"BENCH{i:06d}").write_text(
                f"from <bench@example.test>\nto <user@sink.test>\n\n" + message(i))
        self.queue = queue
        port = free_port()
        (base / "postling.conf").write_text(f"""
hostname = postling-bench.example.test
domains = example.test
data_dir = data
users_file = users
listen_smtp = 127.0.0.1:{port}
run_as = root
trusted_networks = 127.0.0.0/8
dns_servers = 127.0.0.1:{dns_port}
outbound_port = {sink_port}
outbound_max_connections = {max(20, concurrency)}
outbound_max_per_destination = {concurrency}
queue_retry = 10m
""")
        self.log = open(base / "postling.log", "w")
        self.proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(base / "postling.conf")],
                                     stderr=self.log,
                                     env={**os.environ, "RUST_LOG": "info", **(slow or {})},
                                     preexec_fn=cgroup.enter)
        self.started = time.monotonic()
        wait_port(port)

    def left(self) -> int:
        return sum(1 for _ in self.queue.iterdir())

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


class Postfix:
    name = "postfix"

    def __init__(self, base: Path, sink_port: int, cgroup: Cgroup, concurrency: int,
                 slow: dict = None):
        self.base = base
        self.port = free_port()
        # Postfix's daemons keep only the environment it names.
        imported = (f"import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                    f"LD_PRELOAD={slow['LD_PRELOAD']} FSYNC_DELAY_US={slow['FSYNC_DELAY_US']}\n"
                    if slow else "")
        self.conf = start_postfix(base, f"127.0.0.1:{self.port}", f"""
myhostname = postfix-bench.example.test
relayhost = [{SINK_IP}]:{sink_port}
defer_transports = smtp
smtp_destination_concurrency_limit = {concurrency}
smtp_initial_destination_concurrency = {concurrency}
default_process_limit = {max(200, concurrency + 50)}
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
message_size_limit = 10485760
""" + imported, preexec_fn=cgroup.enter, env=slow)

    def fill(self, count: int):
        """Queues `count` messages through smtpd (held by defer_transports)."""
        body = self.base / "message"
        body.write_text(message(0))
        # smtp-source sends one prepared message, -m times.
        subprocess.run(["smtp-source", "-s", "10", "-m", str(count), "-F", str(body),
                        "-f", "bench@example.test", "-t", "user@sink.test",
                        f"127.0.0.1:{self.port}"], check=True, capture_output=True)
        wait_until(lambda: self.left() == count, "Postfix to queue everything")

    def left(self) -> int:
        n = 0
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            folder = self.base / "queue" / sub
            if folder.exists():
                n += sum(len(f) for _, _, f in os.walk(folder))
        return n

    def unhold(self):
        """Lets smtp deliveries happen again (the queue waits for a flush)."""
        subprocess.run(["postconf", "-c", str(self.conf), "-e", "defer_transports ="], check=True)
        subprocess.run(["postfix", "-c", str(self.conf), "reload"], check=True, capture_output=True)
        time.sleep(2)  # the new qmgr has started

    def flush(self):
        subprocess.run(["postqueue", "-c", str(self.conf), "-f"], check=True, capture_output=True)

    def smtp_pss_kib(self):
        """The PSS of each smtp(8) delivery process of this instance."""
        master = (self.base / "queue/pid/master.pid").read_text().split()[0]
        sizes = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                if cmd[0] != b"smtp" or ppid != master:
                    continue
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        sizes.append(int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
        return sizes

    def stop(self):
        stop_postfix(self.conf)
        time.sleep(1)


ZONES = f"""
    local-zone: "sink.test." static
    local-data: "sink.test. MX 10 mx.sink.test."
    local-data: "mx.sink.test. A {SINK_IP}"
"""


def throughput(base: Path, slow: dict = None):
    """Messages/s and CPU ms per message for each server."""
    results = {}
    base = base / ("slow" if slow else "native")
    base.mkdir()
    base.chmod(0o755)
    sink_port = free_port()
    sink = start_sink(sink_port)
    dns = Unbound(base, ZONES)
    try:
        # postling: the queue is there before it starts; its first queue
        # run lets it go.
        cg = Cgroup("postling")
        here = base / "postling"
        here.mkdir()
        p = Postling(here, sink_port, dns.port, MESSAGES, cg, CONCURRENCY, slow)
        try:
            t0 = p.started
            wait_until(lambda: p.left() == 0, "postling's queue to empty")
            elapsed = time.monotonic() - t0
            cpu = cg.cpu_seconds()
            results["postling"] = (MESSAGES / elapsed, cpu * 1000 / MESSAGES)
        finally:
            p.stop()
            cg.remove()
        cg = Cgroup("postfix")
        here = base / "postfix"
        here.mkdir()
        f = Postfix(here, sink_port, cg, CONCURRENCY, slow)
        try:
            f.fill(MESSAGES)
            f.unhold()
            cpu0 = cg.cpu_seconds()
            t0 = time.monotonic()
            f.flush()
            wait_until(lambda: f.left() == 0, "Postfix's queue to empty")
            elapsed = time.monotonic() - t0
            cpu = cg.cpu_seconds() - cpu0
            results["postfix"] = (MESSAGES / elapsed, cpu * 1000 / MESSAGES)
        finally:
            f.stop()
            cg.remove()
    finally:
        sink.terminate()
        sink.wait(10)
        dns.stop()
    return results


def memory(base: Path):
    """KiB per outbound connection, each waiting on a tarpit."""
    results = {}
    port = free_port()
    dns = Unbound(base, ZONES)
    try:
        tarpit = Tarpit(port)
        cg = Cgroup("postling-mem")
        here = base / "postling-mem"
        here.mkdir()
        # The empty server's RSS first, then with the tarpit's connections.
        empty = Postling(here, port, dns.port, 0, cg, TARPIT)
        time.sleep(1)
        idle_rss = empty.rss_kib()
        empty.stop()
        shutil.rmtree(here)
        here.mkdir()
        p = Postling(here, port, dns.port, TARPIT, cg, TARPIT)
        try:
            wait_until(lambda: len(tarpit.held) >= TARPIT, "postling's connections", 60)
            time.sleep(1)
            results["postling"] = (p.rss_kib() - idle_rss) / TARPIT
        finally:
            p.stop()
            cg.remove()
            tarpit.stop()
        tarpit = Tarpit(port)
        cg = Cgroup("postfix-mem")
        here = base / "postfix-mem"
        here.mkdir()
        f = Postfix(here, port, cg, TARPIT)
        try:
            f.fill(TARPIT)
            f.unhold()
            f.flush()
            wait_until(lambda: len(tarpit.held) >= min(TARPIT, 100), "Postfix's connections", 120)
            time.sleep(2)
            sizes = f.smtp_pss_kib()
            results["postfix"] = sum(sizes) / max(1, len(sizes))
            results["postfix_processes"] = len(sizes)
        finally:
            f.stop()
            cg.remove()
            tarpit.stop()
    finally:
        dns.stop()
    return results


def main():
    if not POSTLING.exists():
        sys.exit(f"build first: {POSTLING}")
    base = Path(tempfile.mkdtemp(prefix="postling-bench-out-"))
    base.chmod(0o755)  # Postfix daemons run as user postfix
    try:
        modes = [("native disk", None)]
        if os.environ.get("BENCH_SLOW", "1") != "0":
            shim = subprocess.run(["sh", str(SHIM_BUILD)], capture_output=True,
                                  text=True, check=True).stdout.strip()
            modes.append((f"every fsync +{int(FSYNC_US) // 1000} ms (an SD card)",
                          {"LD_PRELOAD": shim, "FSYNC_DELAY_US": FSYNC_US}))
        for label, slow in modes:
            t = throughput(base, slow)
            (pm, pc), (fm, fc) = t["postling"], t["postfix"]
            print(f"{MESSAGES} messages of {SIZE} octets, {CONCURRENCY} connections "
                  f"to the sink, {label}:")
            print(f"  postling {pm:8.1f} msg/s  {pc:6.3f} CPU ms/msg")
            print(f"  postfix  {fm:8.1f} msg/s  {fc:6.3f} CPU ms/msg")
            print(f"  ratio    {pm / fm:8.2f}x throughput, {pc / fc:5.2f} of Postfix's "
                  "CPU per message", flush=True)
        if os.environ.get("BENCH_MEMORY", "1") != "0":
            m = memory(base)
            print(f"memory per outbound connection ({TARPIT} to a tarpit):")
            print(f"  postling {m['postling']:8.1f} KiB (RSS growth / connections)")
            print(f"  postfix  {m['postfix']:8.1f} KiB (PSS of each of "
                  f"{m['postfix_processes']} smtp processes)")
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
