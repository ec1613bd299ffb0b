"""`postling sendmail` (and the binary run as `sendmail`) hands a
message to the running server over the local socket: local recipients
get it at once, remote ones are queued (and DKIM-signed when the domain
has a key), Bcc is dropped with -t, missing From/Date/Message-ID are
added. Exit codes as sendmail's: 75 when the server is down, 64 for bad
arguments, 65 for no recipients."""

import os
import stat
import subprocess

from conftest import BINARY, Server


def run(args, text, env=None, exe=BINARY):
    return subprocess.run([exe, *args], input=text.encode(), capture_output=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_sendmail_t_delivers_locally_and_queues_the_rest(tmp_path):
    s = Server(tmp_path)  # no trusted_networks: the socket alone lets it relay
    try:
        msg = ("To: Alice <alice@example.test>, friend@elsewhere.test\n"
               "Bcc: bob@example.test\nSubject: nightly report\n\nAll well.\n.\nnot part of it\n")
        out = run(["sendmail", "-c", str(s.conf), "-t", "-f", "cron@example.test", "-F", "Cron Daemon"], msg)
        assert out.returncode == 0, out.stderr
        alice = s.messages("alice")[0]
        assert alice["Subject"] == "nightly report"
        assert str(alice["From"]) == "Cron Daemon <cron@example.test>"
        assert alice["Date"] and alice["Message-ID"]
        assert "Bcc" not in alice
        assert alice.get_content() == "All well.\n"
        # Bcc got it too, without seeing it named.
        assert len(s.raw_messages("bob")) == 1
        queued = s.queued()
        assert len(queued) == 1 and queued[0].startswith("from <cron@example.test>\nto <friend@elsewhere.test>\n")
        # The socket: anyone may connect; data_dir only traversable.
        data = tmp_path / "data"
        assert stat.S_IMODE(data.stat().st_mode) == 0o711
        assert stat.S_IMODE((data / "public").stat().st_mode) == 0o755
        sock = data / "public/sendmail"
        assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o666
        # Run as `sendmail` (a link), config from the environment; -i
        # keeps a lone dot.
        link = tmp_path / "sendmail"
        link.symlink_to(BINARY)
        out = run(["-i", "alice@example.test"], "Subject: dots\n\n.\nstill here\n",
                  env={"POSTLING_CONFIG": str(s.conf)}, exe=str(link))
        assert out.returncode == 0, out.stderr
        dots = [m for m in s.messages("alice") if m["Subject"] == "dots"][0]
        assert dots.get_content() == ".\nstill here\n"
        # An unknown local user: refused for good.
        out = run(["sendmail", "-c", str(s.conf), "nobody-here@example.test"], "Subject: x\n\nx\n")
        assert out.returncode == 69 and b"nobody-here@example.test" in out.stderr, out.stderr
        # Bad arguments, no recipients.
        assert run(["sendmail", "-c", str(s.conf), "-Z"], "").returncode == 64
        assert run(["sendmail", "-c", str(s.conf), "-t"], "Subject: x\n\nx\n").returncode == 65
    finally:
        s.stop()
    # The server is down: try again later.
    out = run(["sendmail", "-c", str(s.conf), "alice@example.test"], "Subject: x\n\nx\n")
    assert out.returncode == 75 and b"not running" in out.stderr, out.stderr
