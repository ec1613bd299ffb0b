"""Helpers the side-by-side benchmarks share: loopback ports only."""

import socket
import subprocess
import time


def free_port():
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    """Waits until something accepts connections on 127.0.0.1:port."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class ImapClient:
    """A line-oriented IMAP client on 127.0.0.1 that sends commands as
    given, reads answers with their literals inlined, and times each
    command from sending it to its tagged line."""

    def __init__(self, port, login=None, timeout=600):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.n = 0
        self.seconds = 0.0
        if login:
            self.ok(f"LOGIN {login[0]} {login[1]}")

    def run(self, command: str):
        """(untagged lines, status word): OK, NO or BAD. The time it
        took is in `seconds`."""
        self.n += 1
        tag = f"t{self.n}".encode()
        start = time.monotonic()
        self.sock.sendall(tag + b" " + command.encode() + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError(f"connection closed after {command!r}")
            while line.endswith(b"}\r\n") and b"{" in line:
                size = line[line.rindex(b"{") + 1:-3]
                if not size.isdigit():
                    break
                more = self.file.read(int(size)) + self.file.readline()
                line += more
                if not more.endswith(b"}\r\n"):
                    break
            if line.startswith(tag + b" "):
                self.seconds = time.monotonic() - start
                return lines, line.split(b" ", 2)[1]
            lines.append(line)

    def ok(self, command: str) -> float:
        """Runs a command that must succeed; the seconds it took."""
        lines, status = self.run(command)
        if status != b"OK":
            raise RuntimeError(f"{command}: {status!r}")
        return self.seconds

    def close(self):
        try:
            self.sock.sendall(b"z LOGOUT\r\n")
        finally:
            self.sock.close()


class FreshDisk:
    """A new ext4 file system for one server's run: an image file on this
    machine's disk, loop-mounted at `folder`, with ext4's defaults (a
    journal, as a Raspberry Pi's root file system has).

    Why: every run's files are deleted when it ends, and on a file system
    that has just deleted thousands of inodes (this machine's root runs
    without a journal), ext4 skips each recently deleted inode while it
    allocates a new one. Profiled, that walk (recently_deleted,
    find_inode_bit) took up to 80% of a run's CPU, and identical runs
    differed 3x by where they fell. On a fresh file system each run
    starts the same. Where a loop mount is not possible (no root, no
    loop device) the folder is used as it is, and `fresh` says so."""

    def __init__(self, folder, size="3G"):
        self.folder = folder
        self.image = folder.parent / f".{folder.name}.img"
        self.fresh = False
        folder.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["truncate", "-s", size, str(self.image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)],
                           check=True, capture_output=True)
            subprocess.run(["mount", "-o", "loop", str(self.image), str(folder)],
                           check=True, capture_output=True)
            self.fresh = True
            folder.chmod(0o755)
        except (OSError, subprocess.CalledProcessError):
            self.image.unlink(missing_ok=True)

    def release(self):
        if self.fresh:
            subprocess.run(["umount", str(self.folder)], check=False)
            self.fresh = False
        self.image.unlink(missing_ok=True)
