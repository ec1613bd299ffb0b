"""No disk work on the poll loop: the server runs under `strace -f` while
mail is delivered and read back over POP3 (Maildir and mbox, small and
large messages), and the loop thread (the process's first thread) opens
no file under the data directory (mail folders, spool, queue); the
helpers do all of that."""

import os
import poplib
import shutil
import signal
import smtplib
import subprocess

import pytest

from conftest import Server, users_with_password

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_the_loop_thread_opens_no_mail_file(tmp_path, fmt):
    trace = tmp_path / "trace.txt"
    s = Server(tmp_path, fmt, users=users_with_password(tmp_path, "pw"),
               extra="listen_pop3 = 127.0.0.1:0",
               wrap=["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=open,openat,openat2",
                     "-o", str(trace)])
    try:
        small = b"Subject: small\r\n\r\nhello\r\n"
        big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 4000  # 312 KiB
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("a@remote.test", ["alice@example.test"], small)
            c.sendmail("a@remote.test", ["alice@example.test"], big)
        p = poplib.POP3("127.0.0.1", s.ports["POP3"])
        p.user("alice@example.test")
        p.pass_("pw")
        assert p.stat()[0] == 2
        got = [b"\r\n".join(p.retr(i)[1]) for i in (1, 2)]
        p.dele(1)
        p.quit()
        assert got[1].endswith(b"x" * 76)
    finally:
        # Stop postling itself (strace's child, the first thread traced);
        # strace then exits with it.
        first = int(trace.read_text().split(maxsplit=1)[0])
        os.kill(first, signal.SIGTERM)
        try:
            s.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(first, signal.SIGKILL)
            s.proc.kill()
            s.proc.wait()
    lines = trace.read_text().splitlines()
    loop = lines[0].split()[0]  # the first thread traced is the loop's
    mail = str(tmp_path / "data") + "/"
    # The SRS secret is read (or made) once at start, before the loop.
    opened = [l for l in lines if l.split()[0] == loop and mail in l
              and "O_DIRECTORY" not in l and "postling-srs-secret" not in l]
    assert opened == [], "\n".join(opened)
    # ...while the helpers did open them.
    assert any(mail in l and l.split()[0] != loop for l in lines)
