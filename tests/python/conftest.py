"""Fixtures: a real `postling serve` on a free loopback port, in its own
temporary folder, stopped after each test. Every test runs once with
Maildir and once with mbox."""

import email
import email.policy
import mailbox
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("POSTLING_BIN", str(ROOT / "target/debug/postling"))

USERS = "alice@example.test\nbob@example.test\n"
ALIASES = "team@example.test: alice@example.test, bob@example.test\n"


def unquote_mboxrd(raw: bytes) -> bytes:
    """mboxrd: a line `>+From ` lost one `>` when it was quoted."""
    lines = raw.split(b"\n")
    out = [l[1:] if re.match(rb">+From ", l) else l for l in lines]
    text = b"\n".join(out)
    # The blank line that separates messages is not part of the message.
    return text[:-1] if text.endswith(b"\n\n") else text


class Server:
    """A running postling with helpers to read what it delivered."""

    def __init__(self, tmp: Path, fmt: str):
        self.dir = tmp
        self.format = fmt
        (tmp / "users").write_text(USERS)
        (tmp / "aliases").write_text(ALIASES)
        conf = tmp / "postling.conf"
        conf.write_text(
            "hostname = mx.example.test\n"
            "domains = example.test\n"
            "data_dir = data\n"
            f"mailbox_format = {fmt}\n"
            "users_file = users\naliases_file = aliases\n"
            "listen_smtp = 127.0.0.1:0\n"
            "recipient_delimiter = +\n"
            "trusted_networks =\n"
        )
        self.log = []
        self.proc = subprocess.Popen(
            [BINARY, "serve", "-c", str(conf)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        found = threading.Event()
        self.port = None

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening for SMTP on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(10):
            self.stop()
            raise RuntimeError("postling did not start: " + "".join(self.log))

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

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(params=["maildir", "mbox"])
def server(request, tmp_path):
    s = Server(tmp_path, request.param)
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)
