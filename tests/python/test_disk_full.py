"""Disk full: 452 4.3.1, and nothing half-written visible, for Maildir
and mbox. The data folder is a tiny tmpfs of the test's own (root only)."""

import os
import shutil
import smtplib
import subprocess

import pytest

from conftest import Server


def mount_tmpfs(tmp_path, size: str):
    """A tmpfs of `size` as the test server's data folder (or a skip)."""
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(data)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + mounted.stderr.decode())
    return data


@pytest.fixture(params=["maildir", "mbox"])
def full_server(request, tmp_path):
    data = mount_tmpfs(tmp_path, "256k")
    # No free-space margin: this test is about writes that fail.
    s = Server(tmp_path, request.param, extra="min_free_space = 0")
    try:
        yield s
    finally:
        s.stop()
        subprocess.run(["umount", str(data)])


def mailbox_octets(server):
    path = server.mailbox_path("bob")
    if server.format == "mbox":
        return path.read_bytes() if path.exists() else b""
    files = []
    for sub in ("new", "cur", "tmp"):
        d = path / sub
        if d.exists():
            files += [(sub, n, (d / n).read_bytes()) for n in sorted(os.listdir(d))]
    return files


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_disk_full_is_452_and_leaves_nothing_half_written(full_server):
    s = full_server
    small = b"Subject: small\r\n\r\nfits\r\n"
    with smtplib.SMTP("127.0.0.1", s.port) as c:
        c.sendmail("a@remote.test", ["bob@example.test"], small)
        before = mailbox_octets(s)
        big = b"Subject: big\r\n\r\n" + (b"z" * 76 + b"\r\n") * 8000  # ~600 KiB
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@remote.test", ["bob@example.test"], big)
        assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1")
        # Exactly what was there before: no partial file, no partial append.
        assert mailbox_octets(s) == before
        # And the server goes on: a small message still lands.
        c.sendmail("a@remote.test", ["bob@example.test"], small)
    assert len(s.messages("bob")) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_below_min_free_space_mail_is_refused_at_once(tmp_path):
    """min_free_space (default 100M): a nearly full disk refuses at MAIL,
    before the client sends a message that could not be stored."""
    data = mount_tmpfs(tmp_path, "4m")
    try:
        for extra, want in (("", 452), ("min_free_space = 1M", 250)):
            s = Server(tmp_path, "maildir", extra=extra)
            try:
                with smtplib.SMTP("127.0.0.1", s.port) as c:
                    c.ehlo("client.test")
                    code, text = c.mail("a@remote.test")
                    assert code == want, (extra, text)
                    if want == 452:
                        assert text.startswith(b"4.3.1")
                        assert s.wait_logged("less than min_free_space")
            finally:
                s.stop()
    finally:
        subprocess.run(["umount", str(data)])
