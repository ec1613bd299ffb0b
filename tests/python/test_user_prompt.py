"""`postling user add` on a terminal asks twice and does not echo."""

import os
import pty
import select
import subprocess
import time

from conftest import BINARY


def test_password_prompt_on_a_terminal_has_no_echo(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([BINARY, "user", "add", "zoe@example.test", "-c", str(conf)],
                            stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True,
                            preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
    os.close(follower)
    seen = b""

    def read_until(needle, timeout=20):
        nonlocal seen
        end = time.time() + timeout
        while needle not in seen and time.time() < end:
            r, _, _ = select.select([leader], [], [], 0.2)
            if r:
                try:
                    seen += os.read(leader, 1024)
                except OSError:
                    break
        assert needle in seen, seen

    read_until(b"New password: ")
    os.write(leader, b"tty secret\n")
    read_until(b"Again: ")
    os.write(leader, b"tty secret\n")
    assert proc.wait(30) == 0, seen
    read_until(b"updated")
    assert b"tty secret" not in seen
    os.close(leader)
    line = (tmp_path / "users").read_text().strip()
    assert line.startswith("zoe@example.test:{ARGON2ID}$argon2id$")
