"""Bounded memory under attack: large messages arriving slowly from many
clients spool to disk, and clients that pipeline without reading their
replies cannot grow the server. Measured from the kernel's own counters
(/proc/PID/status), with thresholds far below what holding the data in
memory would take."""

import socket
import threading
import time

import pytest

from conftest import Server, make_maildir, pop3_login, read_reply, users_with_password


def status_kib(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssPeak:
    """Samples a process's RSS in a thread while the `with` block runs:
    `before` when it began, `most` the highest seen."""

    def __init__(self, pid: int, every: float = 0.002):
        self.pid, self.every = pid, every

    def __enter__(self):
        self.before = status_kib(self.pid, "VmRSS")
        self.samples = [self.before]
        self.done = threading.Event()

        def sample():
            while not self.done.is_set():
                self.samples.append(status_kib(self.pid, "VmRSS"))
                time.sleep(self.every)

        self.thread = threading.Thread(target=sample)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    @property
    def growth(self) -> int:
        return max(self.samples) - self.before


def test_twenty_large_messages_at_once_spool_to_disk(tmp_path):
    """20 clients each send 4 MiB and hold back the final dot; holding
    them in memory would take 80 MiB. Peak RSS stays small, every
    message lands, and each is one file hard-linked into both mailboxes
    (not copied again)."""
    s = Server(tmp_path, extra="max_connections_per_ip = 50\nmax_message_size = 30M")
    try:
        line = b"y" * 78 + b"\r\n"
        body = line * (4 * 1024 * 1024 // len(line))
        # Stored with LF line ends; up to 32 KiB a client stays in memory.
        spool_min = 20 * (len(body) * 79 // 80 - 32 * 1024)
        clients = []
        for i in range(20):
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
            f = sock.makefile("rb")
            read_reply(f)
            sock.sendall(b"EHLO client.test\r\n")
            read_reply(f)
            sock.sendall(b"MAIL FROM:<a@remote.test>\r\n"
                         b"RCPT TO:<alice@example.test>\r\n"
                         b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
            for want in (b"250", b"250", b"250", b"354"):
                assert read_reply(f).startswith(want)
            clients.append((sock, f))
        for i, (sock, _) in enumerate(clients):
            sock.sendall(b"Subject: big %d\r\n\r\n" % i + body)
        # Everything but the dots is in; the spool holds it, not memory.
        spooled = 0
        for _ in range(100):
            spool = tmp_path / "data/tmp"
            spooled = sum(p.stat().st_size for p in spool.iterdir())
            if spooled >= spool_min:
                break
            time.sleep(0.1)
        assert spooled >= spool_min, (spooled, spool_min)
        held = status_kib(s.proc.pid, "VmRSS")
        for sock, f in clients:
            sock.sendall(b".\r\n")
        for sock, f in clients:
            assert read_reply(f).startswith(b"250 2.0.0"), "not stored"
            sock.close()
        peak = status_kib(s.proc.pid, "VmHWM")
        assert held < 32 * 1024, f"{held} KiB RSS while 80 MiB arrived"
        assert peak < 40 * 1024, f"peak RSS {peak} KiB"
        for user in ("alice", "bob"):
            files = list((tmp_path / f"data/mail/example.test/{user}/new").iterdir())
            assert len(files) == 20
            for p in files:
                st = p.stat()
                assert st.st_nlink == 2, "copied, not linked"
                assert st.st_mode & 0o777 == 0o600
        assert list((tmp_path / "data/tmp").iterdir()) == []
        stored = s.raw_messages("bob")
        assert all(m.endswith(body.replace(b"\r\n", b"\n")) for m in stored)
    finally:
        s.stop()


def flood(sock, payload: bytes, seconds: float) -> int:
    """Sends as much of `payload` as the server takes in `seconds`,
    never reading; returns the octets sent."""
    sock.setblocking(False)
    sent, end = 0, time.monotonic() + seconds
    while sent < len(payload) and time.monotonic() < end:
        try:
            sent += sock.send(payload[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.05)
    return sent


def test_pipelining_without_reading_is_bounded(tmp_path):
    """A logged-in POP3 client pipelines UIDL against a 2,000-message
    mailbox and never reads (each answer is ~80 KB); an SMTP client does
    the same with NOOP. The server stops reading them once 64 KiB of
    output waits, so its memory stays flat, and other clients are still
    served."""
    make_maildir(tmp_path / "data/mail/example.test/alice", 2000)
    s = Server(tmp_path, users=users_with_password(tmp_path, "pw"),
               extra="listen_pop3 = 127.0.0.1:0")
    try:
        before = status_kib(s.proc.pid, "VmRSS")
        pop, f, answer = pop3_login(s.ports["POP3"], "alice@example.test", "pw", 10)
        assert answer.startswith(b"+OK 2000 messages")
        smtp = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        smtp.recv(100)
        threads = [threading.Thread(target=flood, args=(pop, b"UIDL\r\n" * 100_000, 5)),
                   threading.Thread(target=flood, args=(smtp, b"NOOP\r\n" * 200_000, 5))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = status_kib(s.proc.pid, "VmRSS")
        # A third client is answered at once.
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as other:
            assert other.recv(100).startswith(b"220")
        assert after - before < 8 * 1024, f"RSS {before} -> {after} KiB"
        # The flooding client still gets whole, ordered answers.
        pop.setblocking(True)
        first = f.readline()
        assert first == b"+OK\r\n"
        assert f.readline().startswith(b"1 1700000000.M0P1Q0.test")
        pop.close()
        smtp.close()
    finally:
        s.stop()


def test_bdat_chunks_spool_to_disk_too(tmp_path):
    """CHUNKING: five clients each send a 12 MiB message in 3 MiB BDAT
    chunks and hold back the LAST one; the chunks go to the spool, not
    into memory."""
    s = Server(tmp_path, extra="max_message_size = 30M")
    try:
        chunk = (b"c" * 998 + b"\r\n") * 3145  # 3 MiB
        clients = []
        for i in range(5):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
            f = c.makefile("rb")
            read_reply(f)
            c.sendall(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n"
                      b"RCPT TO:<bob@example.test>\r\n")
            for _ in range(3):
                read_reply(f)
            head = b"Subject: chunked %d\r\n\r\n" % i
            c.sendall(b"BDAT %d\r\n" % len(head) + head)
            assert read_reply(f).startswith(b"250")
            for _ in range(4):
                c.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
                assert read_reply(f).startswith(b"250")
            clients.append((c, f))
        held = status_kib(s.proc.pid, "VmRSS")
        for c, f in clients:
            c.sendall(b"BDAT 0 LAST\r\n")
            assert read_reply(f).startswith(b"250 2.0.0")
            c.close()
        assert held < 24 * 1024, f"{held} KiB RSS while 60 MiB arrived"
        assert len(s.raw_messages("bob")) == 5
    finally:
        s.stop()


def test_a_big_maildrop_costs_little_and_is_given_back(tmp_path):
    """POP3 on a 20,000-message Maildir: the snapshot costs well under
    128 octets a message while the session lasts, and the server is back
    near its idle size once it ends."""
    make_maildir(tmp_path / "data/mail/example.test/alice", 20_000)
    s = Server(tmp_path, users=users_with_password(tmp_path, "pw"),
               extra="listen_pop3 = 127.0.0.1:0")
    try:
        # A first login (refused) warms up the helper threads' heaps, so
        # what follows measures the maildrop alone.
        c, _, answer = pop3_login(s.ports["POP3"], "bob@example.test", "x")
        assert answer.startswith(b"-ERR")
        c.close()
        before = status_kib(s.proc.pid, "VmRSS")
        grown = []
        for _ in range(3):
            c, f, answer = pop3_login(s.ports["POP3"], "alice@example.test", "pw")
            assert answer.startswith(b"+OK 20000 messages")
            c.sendall(b"UIDL\r\n")
            assert f.readline() == b"+OK\r\n"
            while f.readline() != b".\r\n":
                pass
            grown.append(status_kib(s.proc.pid, "VmRSS") - before)
            c.sendall(b"QUIT\r\n")
            f.readline()
            c.close()
        assert max(grown) * 1024 / 20_000 < 128, grown
        # The last session's memory goes once its UPDATE is done.
        for _ in range(30):
            after = status_kib(s.proc.pid, "VmRSS")
            if after - before < 1024:
                break
            time.sleep(0.1)
        assert after - before < 1024, f"{before} -> {after} KiB"
    finally:
        s.stop()


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_imap_fetch_of_a_46_mb_message_keeps_memory_flat(tmp_path, fmt):
    """BODY[] of a 46 MB message streams from the file (Maildir or mbox):
    the server's RSS, sampled all through the transfer, grows by less
    than 4 MiB."""
    import imaplib
    import smtplib
    s = Server(tmp_path, fmt, users=users_with_password(tmp_path, "pw"),
               extra="listen_imap = 127.0.0.1:0\nmax_message_size = 60M")
    try:
        body = b"".join(b"line %08d " % i + b"y" * 50 + b"\r\n"
                        for i in range(700_000))
        with smtplib.SMTP("127.0.0.1", s.port, timeout=60) as c:
            c.sendmail("a@x.test", ["alice@example.test"],
                       b"Subject: big\r\n\r\n" + body)
        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=60)
        m.login("alice@example.test", "pw")
        m.select()
        m.fetch("1", "(FLAGS)")
        with RssPeak(s.proc.pid, every=0.005) as rss:
            typ, data = m.fetch("1", "BODY.PEEK[]")
        assert data[0][1].endswith(body)
        assert rss.growth < 4096, f"{rss.before} KiB + {rss.growth} KiB"
        m.logout()
    finally:
        s.stop()


def test_imap_fetch_flags_of_20000_messages_streams(tmp_path):
    """FETCH 1:* (FLAGS UID) on a 20,000-message folder is written a
    bounded piece at a time: RSS grows by less than 1 MiB meanwhile."""
    make_maildir(tmp_path / "data/mail/example.test/alice", 20_000)
    s = Server(tmp_path, users=users_with_password(tmp_path, "pw"),
               extra="listen_imap = 127.0.0.1:0")
    try:
        c = socket.create_connection(("127.0.0.1", s.ports["IMAP"]), timeout=60)
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"a LOGIN alice@example.test pw\r\nb SELECT INBOX\r\n")
        while not f.readline().startswith(b"b "):
            pass
        with RssPeak(s.proc.pid) as rss:
            # Read slowly at first, so the server has to wait for us.
            c.sendall(b"c FETCH 1:* (FLAGS UID)\r\n")
            time.sleep(0.3)
            lines = 0
            while not f.readline().startswith(b"c OK"):
                lines += 1
        assert lines == 20_000
        assert rss.growth < 1024, f"{rss.before} KiB + {rss.growth} KiB"
        c.close()
    finally:
        s.stop()
