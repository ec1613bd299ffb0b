"""Real peers the tests and benchmarks start on loopback: a private
Unbound answering only from the zones it is given, and a private
Postfix instance (Debian's package, its own config, queue and log
folders). Nothing here talks to the machine's own resolver or mail
system."""

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def free_port() -> int:
    # A port free for both UDP and TCP.
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


class Unbound:
    """Unbound answering only from its local zones: everything else is
    forwarded to a closed loopback port, so nothing leaves the machine."""

    def __init__(self, tmp: Path, local: str):
        self.port = free_port()
        conf = tmp / "unbound.conf"
        conf.write_text(f"""
server:
    interface: 127.0.0.1
    port: {self.port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{tmp}"
    pidfile: ""
    use-syslog: no
    logfile: "{tmp}/unbound.log"
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    do-not-query-localhost: no
    local-zone: "127.in-addr.arpa." nodefault
    local-zone: "127.in-addr.arpa." static
{local}
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@1
""")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode())
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("unbound did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port_on(host: str) -> int:
    """A TCP port free on `host` (a loopback address)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port_on(host: str, port: int, timeout: float = 30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def start_postfix(base: Path, listen: str, main_cf: str, preexec_fn=None,
                  env: dict = None, maps=()) -> Path:
    """Writes a private Postfix's config under `base` (its folders made,
    `data` owned by postfix), its smtpd on `listen` (`ip:port`) instead
    of port 25, with `main_cf` added to the common settings, and starts
    it (`env` added to its environment). `base` must be enterable by
    user postfix. `maps` are tables to build with postmap first. Every
    Postfix tool is given the private config folder: a Postfix installed
    with "No configuration" has no /etc/postfix/main.cf. Returns the
    config folder (for `postfix -c ... stop`)."""
    conf = base / "etc"
    conf.mkdir()
    for d in ("queue", "data"):
        (base / d).mkdir()
    owner = pwd.getpwnam("postfix")
    os.chown(base / "data", owner.pw_uid, owner.pw_gid)
    (conf / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
alias_maps =
alias_database =
""" + main_cf)
    for table in maps:
        subprocess.run(["postmap", "-c", str(conf), str(table)], check=True)
    master_cf = Path("/etc/postfix/master.cf")
    if not master_cf.exists():
        master_cf = Path("/usr/share/postfix/master.cf.dist")
    master = master_cf.read_text()
    lines = [l for l in master.splitlines() if not l.startswith("smtp      inet")]
    lines.append(f"{listen} inet n - n - - smtpd")
    lines.append("postlog   unix-dgram n  -       n       -       1       postlogd")
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    out = subprocess.run(["postfix", "-c", str(conf), "start"], capture_output=True,
                         text=True, preexec_fn=preexec_fn, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError("postfix did not start: " + out.stderr)
    host, port = listen.rsplit(":", 1)
    wait_port_on(host, int(port))
    return conf


def stop_postfix(conf: Path):
    subprocess.run(["postfix", "-c", str(conf), "stop"], capture_output=True)
