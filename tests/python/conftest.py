"""Fixtures: a real `postling serve` on free loopback ports, in its own
temporary folder, stopped after each test. Mail tests run once with
Maildir and once with mbox; TLS tests get a certificate made here with
the openssl command."""

import email
import email.policy
import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("POSTLING_BIN", str(ROOT / "target/debug/postling"))

USERS = "alice@example.test\nbob@example.test\n"
ALIASES = ("team@example.test: alice@example.test, bob@example.test\n"
           "sales@example.test: bob@example.test\n")


def unquote_mboxrd(raw: bytes) -> bytes:
    """mboxrd: a line `>+From ` lost one `>` when it was quoted."""
    lines = raw.split(b"\n")
    out = [l[1:] if re.match(rb">+From ", l) else l for l in lines]
    text = b"\n".join(out)
    # The blank line that separates messages is not part of the message.
    return text[:-1] if text.endswith(b"\n\n") else text


def make_cert(folder: Path, kind: str = "ec"):
    """A self-signed certificate for localhost: (cert, key) paths."""
    key, cert = folder / f"{kind}.key", folder / f"{kind}.pem"
    algo = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "rsa": ["-newkey", "rsa:2048"],
            "ed25519": ["-newkey", "ed25519"]}[kind]
    subprocess.run(
        ["openssl", "req", "-x509", *algo, "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


class Server:
    """A running postling with helpers to read what it delivered."""

    def __init__(self, tmp: Path, fmt: str = "maildir", extra: str = "",
                 users: str = USERS, netns: str = "", wrap=(), aliases: str = ALIASES):
        self.dir = tmp
        self.format = fmt
        (tmp / "users").write_text(users)
        (tmp / "aliases").write_text(aliases)
        base = {
            "hostname": "mx.example.test",
            "domains": "example.test",
            "data_dir": "data",
            "mailbox_format": fmt,
            "users_file": "users",
            "aliases_file": "aliases",
            "listen_smtp": "127.0.0.1:0",
            "recipient_delimiter": "+",
            "trusted_networks": "",
            # The checks before content delay a new client's greeting:
            # off, but where a test turns them on (test_screen.py).
            "greet_delay": "0",
            # Reverse lookups go to a closed loopback port, never to the
            # machine's resolver (tests that need DNS start Unbound).
            "dns_servers": "127.0.0.1:1",
            # The tests run as root; a real server switches users.
            "run_as": "root",
        }
        for line in extra.strip().splitlines():
            key, _, value = line.partition("=")
            base[key.strip()] = value.strip()
        self.conf = tmp / "postling.conf"
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in base.items()))
        self.log = []
        self.ports = {}
        self.proxy_ports = {}
        # `wrap`: a command to run the server under (strace, say).
        prefix = ["ip", "netns", "exec", netns] if netns else list(wrap)
        self.proc = subprocess.Popen(
            [*prefix, BINARY, "serve", "-c", str(self.conf)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        self.wanted = sum(1 for k in ("listen_smtp", "listen_submission",
                                      "listen_submissions", "listen_pop3",
                                      "listen_pop3s", "listen_imap",
                                      "listen_imaps", "listen_managesieve",
                                      "listen_http", "listen_https")
                          if base.get(k))
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening for (\S+) on \S+:(\d+)", line)
                if m:
                    # PROXY protocol listeners are kept apart.
                    proxied = "(PROXY protocol)" in line
                    ports = self.proxy_ports if proxied else self.ports
                    ports[m.group(1)] = int(m.group(2))
                    if len(set(self.ports) | set(self.proxy_ports)) == self.wanted:
                        ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(10) or len(set(self.ports) | set(self.proxy_ports)) < self.wanted:
            self.stop()
            raise RuntimeError("postling did not start: " + "".join(self.log))
        self.port = self.ports.get("SMTP")

    def mailbox_path(self, user: str) -> Path:
        path = self.dir / "data/mail/example.test" / user
        return path / "INBOX" if self.format == "mbox" else path

    def raw_messages(self, user: str):
        """The user's messages as stored, read through Python's mailbox
        module, mboxrd quoting undone: the octets a reader will see."""
        path = self.mailbox_path(user)
        if not path.exists():
            return []
        if self.format == "mbox":
            box = mailbox.mbox(str(path), create=False)
            return [unquote_mboxrd(box.get_bytes(k)) for k in box.keys()]
        box = mailbox.Maildir(str(path), create=False)
        return [box.get_bytes(k) for k in box.keys()]

    def messages(self, user: str):
        """The user's messages parsed (modern email policy), by Subject."""
        parsed = [email.message_from_bytes(raw, policy=email.policy.default)
                  for raw in self.raw_messages(user)]
        return sorted(parsed, key=lambda m: m["Subject"] or "")

    def queued(self):
        """Files in the outbound queue, as text."""
        new = self.dir / "data/queue/new"
        return [p.read_text() for p in sorted(new.iterdir())] if new.exists() else []

    def logged(self, needle: str) -> bool:
        return any(needle in line for line in self.log)

    def wait_logged(self, needle: str, timeout: float = 5) -> bool:
        """Waits (bounded) for a log line containing `needle`."""
        end = time.monotonic() + timeout
        while not self.logged(needle) and time.monotonic() < end:
            time.sleep(0.05)
        return self.logged(needle)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(params=["maildir", "mbox"])
def server(request, tmp_path):
    s = Server(tmp_path, request.param)
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


class Netns:
    """A network namespace with loopback up and the given addresses."""

    def __init__(self, name: str, v4=(), v6=(), v6_anyip=()):
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.run(["ip", "link", "set", "lo", "up"])
        for a in v4:
            self.run(["ip", "addr", "add", a, "dev", "lo"])
        for a in v6:
            self.run(["ip", "-6", "addr", "add", a, "dev", "lo"])
        # Any address in these prefixes may be bound (with IP_FREEBIND):
        # one /64 with as many client addresses as a test wants.
        for p in v6_anyip:
            self.run(["ip", "-6", "route", "add", "local", p, "dev", "lo"])

    def run(self, cmd):
        subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=True,
                       capture_output=True)

    def python(self, script: str, *args, timeout=120):
        return subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c",
             textwrap.dedent(script), *map(str, args)],
            capture_output=True, text=True, timeout=timeout)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name])


def read_reply(f) -> bytes:
    """One SMTP reply, all its lines, from a socket's binary file."""
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


def make_maildir(folder: Path, count: int):
    """A Maildir of `count` small seen messages, named as Dovecot would
    (sizes in the name), written directly."""
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    text = b"Subject: m\n\nhello\n"
    for i in range(count):
        name = f"{1700000000 + i}.M{i}P1Q{i}.test,S={len(text)},W={len(text) + 3}"
        (folder / "cur" / (name + ":2,S")).write_bytes(text)


def pop3_login(port: int, user: str, password: str, timeout: float = 30):
    """A raw POP3 connection after USER/PASS: (socket, binary file, the
    server's answer to PASS)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(f"USER {user}\r\nPASS {password}\r\n".encode())
    f.readline()
    return sock, f, f.readline()


def users_with_password(tmp: Path, password: str) -> str:
    """A users file text: alice with `password` (set through `postling
    user add`), bob without one."""
    conf = tmp / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp / "users").write_text("bob@example.test\n")
    add_user(conf, "alice@example.test", password)
    return (tmp / "users").read_text()


def add_user(conf: Path, address: str, password: str):
    """Adds a user through `postling user add`, password on stdin."""
    out = subprocess.run([BINARY, "user", "add", address, "-c", str(conf)],
                         input=password + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.fixture
def tls_server(tmp_path):
    """SMTP, submission (587-style) and submissions (465-style) with a
    certificate; alice's password is made by `postling user add`, bob's
    by doveadm (SHA512-CRYPT), carol's by doveadm (BLF-CRYPT)."""
    cert, key = make_cert(tmp_path)
    users = tmp_path / "users"
    users.write_text("bob@example.test:" + doveadm("SHA512-CRYPT", "bob pw") + "\n"
                     "carol@example.test:" + doveadm("BLF-CRYPT", "carol pw") + "\n")
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    add_user(conf, "alice@example.test", "alice pw")
    s = Server(tmp_path, "maildir", users=users.read_text(), extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_submission = 127.0.0.1:0
        listen_submissions = 127.0.0.1:0
        auth_failure_limit = 50
        max_connections_per_ip = 50
    """)
    s.cert = cert
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def doveadm(scheme: str, password: str) -> str:
    out = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()
