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
        # The local socket is not checked (issue 18): no Authentication-Results.
        assert "Authentication-Results" not in alice
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


def as_account(name):
    """A preexec_fn that becomes the local account `name`."""
    import pwd
    who = pwd.getpwnam(name)

    def become():
        os.setgroups([])
        os.setgid(who.pw_gid)
        os.setuid(who.pw_uid)
    return become, who.pw_uid


def test_local_accounts_send_only_as_themselves(tmp_path):
    """The socket asks the kernel who is calling (SO_PEERCRED): Received
    and the log name the uid; a local account may use only its own
    address (login@hostname) and what sendmail_senders grants it (else
    553 5.7.1 and exit 77); root may use any. DKIM signs only a From:
    the submitter owns."""
    import shutil
    import tempfile
    from pathlib import Path
    from test_dkim import keygen
    base = Path(tempfile.mkdtemp(prefix="postling-local-"))
    try:
        os.chmod(base, 0o755)
        keygen(base, "sel")
        (base / "senders").write_text("# granted senders\nnobody: Sales@example.test\n")
        s = Server(base, extra="sendmail_senders = senders\ndkim_keys = example.test:sel:sel.pem")
        become, uid = as_account("nobody")

        def send(args, text, who=become):
            return subprocess.run([BINARY, "sendmail", "-c", str(s.conf), *args],
                                  input=text.encode(), capture_output=True, timeout=60,
                                  preexec_fn=who)
        try:
            out = send(["-f", "alice@example.test", "bob@example.test"], "Subject: forged\n\nx\n")
            assert out.returncode == 77, (out.returncode, out.stderr)
            assert b"553" in out.stderr and b"not owned by uid" in out.stderr, out.stderr
            assert not s.raw_messages("bob")
            # Its own address, the default sender.
            out = send(["bob@example.test"], "Subject: mine\n\nx\n")
            assert out.returncode == 0, out.stderr
            got = s.raw_messages("bob")[0]
            assert f"Received: from local (uid {uid})".encode() in got, got[:300]
            assert b"Return-Path: <nobody@mx.example.test>" in got
            assert s.wait_logged(f"service=local uid={uid}")
            # A granted sender goes out signed when From: is its own...
            out = send(["-f", "sales@example.test", "far@elsewhere.test"],
                       "From: sales@example.test\nSubject: offer\n\nx\n")
            assert out.returncode == 0, out.stderr
            # ...and unsigned when From: names someone else.
            out = send(["-f", "sales@example.test", "far@elsewhere.test"],
                       "From: alice@example.test\nSubject: not mine\n\nx\n")
            assert out.returncode == 0, out.stderr
            # root may use any sender, and gets it signed.
            out = send(["-f", "alice@example.test", "far@elsewhere.test"],
                       "From: alice@example.test\nSubject: from root\n\nx\n", who=None)
            assert out.returncode == 0, out.stderr
            queued = {q.split("Subject: ")[1].split("\n")[0]: q for q in s.queued()}
            assert set(queued) == {"offer", "not mine", "from root"}, queued.keys()
            assert "DKIM-Signature:" in queued["offer"]
            assert "DKIM-Signature:" not in queued["not mine"]
            assert "DKIM-Signature:" in queued["from root"]
        finally:
            s.stop()
    finally:
        shutil.rmtree(base)
