"""Safe defaults on the open internet: privileges dropped after binding,
private mail files, all-or-nothing delivery, start-up cleanup, and TLS
sessions that end only after their last reply is out."""

import os
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import stat
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Netns, Server, add_user, make_cert, make_maildir, users_with_password

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def ids(pid: int, task: str, field: str):
    for line in open(f"/proc/{pid}/task/{task}/status"):
        if line.startswith(field + ":"):
            return line.split()[1:]
    raise KeyError(field)


@root_only
def test_run_as_drops_privileges_for_every_thread(tmp_path):
    """Started as root with run_as = nobody: binds, then every thread runs
    as nobody with only nobody's groups; the missing data_dir is made for
    nobody (0700), mail is 0600 in 0700 folders, and SIGHUP still reloads
    the users file."""
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="postling-runas-"))
    try:
        os.chmod(base, 0o755)
        s = Server(base, extra="run_as = nobody")
        try:
            assert s.wait_logged("running as nobody")
            # The loop and its helper threads (4 durability, 2 login,
            # 2 reader, 2 spool, 2 mailbox, 1 queue, 2 checks).
            for _ in range(100):
                tasks = os.listdir(f"/proc/{s.proc.pid}/task")
                if len(tasks) >= 16:
                    break
                time.sleep(0.05)
            assert len(tasks) == 16
            for t in tasks:
                assert ids(s.proc.pid, t, "Uid") == [str(nobody.pw_uid)] * 4
                assert ids(s.proc.pid, t, "Gid") == [str(nobody.pw_gid)] * 4
                assert ids(s.proc.pid, t, "Groups") in ([], [str(nobody.pw_gid)])
            data = base / "data"
            st = data.stat()
            # Traversable (for public/sendmail), not listable.
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, 0o711)
            with smtplib.SMTP("127.0.0.1", s.port) as c:
                c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: x\r\n\r\nx\r\n")
            box = data / "mail/example.test/alice"
            files = list((box / "new").iterdir())
            assert len(files) == 1
            for p in [files[0], box, box / "new", data / "mail"]:
                st = p.stat()
                assert st.st_uid == nobody.pw_uid, p
                want = 0o600 if p.is_file() else 0o700
                assert stat.S_IMODE(st.st_mode) == want, p
            # A user added later is picked up on SIGHUP, as nobody.
            with open(base / "users", "a") as f:
                f.write("carol@example.test\n")
            s.proc.send_signal(signal.SIGHUP)
            assert s.wait_logged("reloaded: 3 users")
            with smtplib.SMTP("127.0.0.1", s.port) as c:
                c.sendmail("a@remote.test", ["carol@example.test"], b"Subject: y\r\n\r\ny\r\n")
        finally:
            s.stop()
        assert s.proc.returncode == 0, "".join(s.log)
    finally:
        shutil.rmtree(base)


@root_only
def test_user_add_keeps_the_users_file_private_and_its_owner(tmp_path):
    nobody = pwd.getpwnam("nobody")
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    users = tmp_path / "users"
    users.write_text("# our users\nbob@example.test\n")
    os.chmod(users, 0o644)
    os.chown(users, nobody.pw_uid, nobody.pw_gid)
    add_user(conf, "alice@example.test", "pw")
    st = users.stat()
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert "# our users\nbob@example.test\nalice@example.test:{ARGON2ID}" in users.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".users")] == []


def test_a_failed_copy_withdraws_the_others(tmp_path):
    """One message for alice and bob; bob's new/ cannot take it. The
    client gets 452 and alice's copy, already renamed into place, is taken
    back, so the retry after the fix leaves exactly one copy each."""
    s = Server(tmp_path)
    try:
        bob = tmp_path / "data/mail/example.test/bob"
        for sub in ("tmp", "cur"):
            (bob / sub).mkdir(parents=True)
        (bob / "new").write_text("not a folder")
        msg = b"Subject: both\r\n\r\nfor alice and bob\r\n"
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@remote.test", ["alice@example.test", "bob@example.test"], msg)
            assert e.value.smtp_code == 452
            assert s.raw_messages("alice") == []
            assert list((tmp_path / "data/mail/example.test/alice/tmp").iterdir()) == []
            (bob / "new").unlink()
            (bob / "new").mkdir()
            c.sendmail("a@remote.test", ["alice@example.test", "bob@example.test"], msg)
        assert len(s.raw_messages("alice")) == 1
        assert len(s.raw_messages("bob")) == 1
        assert s.wait_logged("withdrawing")
    finally:
        s.stop()


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    """The Maildir rule: tmp/ files older than 36 hours are a crash's
    leftovers. The spool is emptied (nothing there was acknowledged);
    young tmp/ files may belong to a delivery under way and stay; a file
    in new/ shorter than its name's S= never got its 250."""
    data = tmp_path / "data"
    old = time.time() - 37 * 3600
    files = {}
    for where in ("mail/example.test/alice/tmp", "queue/tmp", "tmp"):
        folder = data / where
        folder.mkdir(parents=True)
        for age in ("old", "young"):
            p = folder / f"{age}-file"
            p.write_text("leftover")
            if age == "old":
                os.utime(p, (old, old))
            files[(where, age)] = p
    # A delivery cut short by a crash before its batch was flushed: in
    # new/, but shorter than the S= its name promises (never acknowledged).
    new = data / "mail/example.test/alice/new"
    new.mkdir()
    whole = new / "1795000000.M1P1Q1.h,S=6,W=7"
    whole.write_text("whole\n")
    short = new / "1795000001.M2P1Q2.h,S=500,W=510"
    short.write_text("")
    s = Server(tmp_path)
    try:
        assert s.wait_logged("removed 5 stale temporary files")
        assert s.logged("cut short by a crash")
    finally:
        s.stop()
    gone = {k for k, p in files.items() if not p.exists()}
    assert gone == {("mail/example.test/alice/tmp", "old"), ("queue/tmp", "old"),
                    ("tmp", "old"), ("tmp", "young")}
    assert whole.exists() and not short.exists()


def test_tls_session_ends_only_after_its_last_reply(tmp_path):
    """Over POP3S a client pipelines 200 LISTs of a 2,000-message
    mailbox (4 MB of answers) and QUIT in one small write, then reads
    nothing for a while, so the answers back up in the socket and in the
    TLS buffers. Every answer still arrives, then the sign-off and a
    clean TLS close, not a truncated stream. (Before, output over TLS
    stalled here for good: the loop stopped writing while the socket
    still had room and waited for a writable edge that never came.)"""
    make_maildir(tmp_path / "data/mail/example.test/alice", 2000)
    cert, key = make_cert(tmp_path)
    s = Server(tmp_path, users=users_with_password(tmp_path, "pw"), extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_pop3s = 127.0.0.1:0
    """)
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(30)
        raw.connect(("127.0.0.1", s.ports["POP3S"]))
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        n = 200
        tls.sendall(b"USER alice@example.test\r\nPASS pw\r\n" + b"LIST\r\n" * n + b"QUIT\r\n")
        time.sleep(3)
        got = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        lines = got.split(b"\r\n")
        assert lines[0].startswith(b"+OK")
        assert sum(1 for l in lines if l == b"2000 21") == n
        assert lines[-2].startswith(b"+OK") and b"signing off" in lines[-2]
        tls.close()
    finally:
        s.stop()



CLOSE_CLIENT = """
import socket, ssl, sys, time
port, cert, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cert)
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(30)
raw.connect(("127.0.0.1", port))
tls = ctx.wrap_socket(raw, server_hostname="localhost")
tls.sendall(b"NOOP\\r\\n" * n + b"QUIT\\r\\n")
time.sleep(2)
got = b""
while True:
    chunk = tls.recv(65536)
    if not chunk:
        break
    got += chunk
lines = got.split(b"\\r\\n")
print(sum(l.startswith(b"250 2.0.0 Ok") for l in lines), lines[-2][:3].decode())
"""


@root_only
def test_tls_quit_behind_a_burst_of_replies_flushes_them_all(tmp_path):
    """4,400 NOOPs and QUIT in one write over implicit TLS, to a server
    whose sockets may hold only 4 KiB (tcp_wmem in a network namespace of
    the test's own): the 60 KB of replies back up in the TLS buffer while
    the client reads nothing. The session ends only once every reply, the
    221 and the TLS close are out (it used to close with the last TLS
    records still buffered)."""
    cert, key = make_cert(tmp_path)
    ns = Netns(f"pl-wmem-{os.getpid()}")
    try:
        ns.run(["sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 4096 4096"])
        s = Server(tmp_path, netns=ns.name, extra=f"""
            tls_cert = {cert}
            tls_key = {key}
            listen_submissions = 127.0.0.1:0
        """)
        try:
            out = ns.python(CLOSE_CLIENT, s.ports["submissions"], cert, 4400,
                            timeout=60)
            assert out.stdout.split() == ["4400", "221"], out.stdout + out.stderr
        finally:
            s.stop()
    finally:
        ns.delete()


def test_mbox_files_are_private(tmp_path):
    s = Server(tmp_path, "mbox")
    try:
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("a@remote.test", ["bob@example.test"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        s.stop()
    inbox = s.mailbox_path("bob")
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o600
    assert stat.S_IMODE(inbox.parent.stat().st_mode) == 0o700


def test_a_locked_mbox_holds_up_only_its_own_mail(tmp_path):
    """mutt holds bob's mbox locked (its dotlock) for 3 seconds while
    four clients send to bob, one for each durability helper. Mail for
    alice is stored at once meanwhile; bob's waits, then lands whole once
    the lock is gone."""
    import threading
    s = Server(tmp_path, "mbox", extra="max_connections_per_ip = 20")
    try:
        inbox = s.mailbox_path("bob")
        inbox.parent.mkdir(parents=True)
        dotlock = inbox.with_name("INBOX.lock")
        dotlock.write_text("mutt")
        codes = []

        def to_bob(i):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.sendmail("a@remote.test", ["bob@example.test"], b"Subject: bob %d\r\n\r\nx\r\n" % i)
                codes.append(250)

        senders = [threading.Thread(target=to_bob, args=(i,)) for i in range(4)]
        for t in senders:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: alice\r\n\r\ny\r\n")
        took = time.monotonic() - start
        assert codes == [], "delivered through a held lock"
        time.sleep(2.5 - took if took < 2.5 else 0)
        dotlock.unlink()
        for t in senders:
            t.join(30)
        assert took < 1.5, f"alice waited {took:.1f} s behind bob's lock"
        assert codes == [250] * 4
        assert len(s.raw_messages("bob")) == 4
        assert len(s.raw_messages("alice")) == 1
    finally:
        s.stop()


def test_a_proxy_listener_drops_what_is_not_a_proxy_header(tmp_path):
    """On a proxy: listener even an allowed host must start with a PROXY
    header: anything else is dropped unanswered, at once; a valid v1
    header is answered with the greeting, and the log names the client
    it gave; a health check's header (UNKNOWN) is served as the proxy."""
    s = Server(tmp_path, extra="""
        listen_smtp = proxy:127.0.0.1:0
        proxy_from = 127.0.0.1
    """)
    try:
        port = s.proxy_ports["SMTP"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"EHLO not-a-proxy\r\n")
            assert c.recv(100) == b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 25\r\n")
            assert c.recv(100).startswith(b"220")
        # A health check (v1 UNKNOWN): served as the proxy itself.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"PROXY UNKNOWN\r\n")
            assert c.recv(100).startswith(b"220")
        assert s.wait_logged("refused ip=127.0.0.1: no PROXY header")
        assert s.wait_logged("connect ip=203.0.113.9 service=SMTP")
        assert s.wait_logged("proxy ip=127.0.0.1 speaks for ip=127.0.0.1")
    finally:
        s.stop()
