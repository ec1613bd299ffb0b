"""The outbound queue from the command line: `postling queue list` shows
each queued message (id, age, sender, every recipient with its state),
including files from before delivery state existed; `queue delete`
removes one. Local recipients of the same message are delivered at once
and are not in the queue."""

import re
import smtplib
import socket
import subprocess

from conftest import BINARY, Server


def queue(server, *args):
    return subprocess.run([BINARY, "queue", *args, "-c", str(server.conf)],
                          capture_output=True, text=True, timeout=30)


def test_queue_list_and_delete(tmp_path):
    # A resolver that never answers: the first attempt stays under way
    # while the queue is listed (an unreachable one fails it at once).
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    s = Server(tmp_path, extra=f"""trusted_networks = 127.0.0.0/8
        dns_servers = 127.0.0.1:{silent.getsockname()[1]}""")
    try:
        assert queue(s, "list").stdout.strip() == "the queue is empty"
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("cron@example.test", ["admin@elsewhere.test", "ops@other.test", "alice@example.test"],
                       "Subject: report\r\n\r\nall well\r\n")
        out = queue(s, "list")
        assert out.returncode == 0, out.stderr
        first, *rcpts = out.stdout.strip().splitlines()
        m = re.match(r"(\S+)  age \d+s  from <cron@example.test>  attempts 0  next now$", first)
        assert m, out.stdout
        assert rcpts == ["  <admin@elsewhere.test> pending", "  <ops@other.test> pending"], out.stdout
        # The local recipient had it at once.
        assert len(s.raw_messages("alice")) == 1
        qid = m.group(1)
        assert queue(s, "delete", "nope").returncode == 1
        assert queue(s, "delete", "../../users").returncode == 1
        out = queue(s, "delete", qid)
        assert out.returncode == 0 and out.stdout.strip() == f"{qid}: deleted", out.stdout + out.stderr
        assert s.queued() == []
        assert queue(s, "list").stdout.strip() == "the queue is empty"
    finally:
        s.stop()
        silent.close()
