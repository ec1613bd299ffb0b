#!/usr/bin/env python3
"""`make bench-fairness`: does one user's long command hold another's
short one back? postling and a private Dovecot side by side, same users
and messages, over loopback.

User `heavy` has 300 messages of 1 MB; three of their sessions SEARCH
TEXT for a word no message holds, over and over. Meanwhile user `light`
(100 small messages in INBOX and in Other) SELECTs one folder then the
other, and FETCHes ten headers after each SELECT. The light user's
latencies (median and p99) are measured with no load, then under the
heavy load, for each server.

Everything listens on 127.0.0.1 high ports; every process started here is
stopped here."""

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchnet import ImapClient
from imap_vs_dovecot import MAIL_USER, PASSWORD, POSTLING, Dovecot, Postling
from pop3_vs_dovecot import hash_password

BIG_COUNT = int(os.environ.get("BENCH_BIG_COUNT", "300"))
BIG_SIZE = int(os.environ.get("BENCH_BIG_SIZE", str(1 << 20)))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "60"))
HEAVY_SESSIONS = 3


def maildir(folder: Path, messages):
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(messages):
        name = f"{1700000000 + i}.M{i}P1Q{i}.bench,S={len(text)}"
        (folder / "cur" / (name + ":2,S")).write_bytes(text)


def big_messages():
    rnd = random.Random(7)
    words = [b"mail", b"server", b"small", b"board", b"linear", b"report",
             b"quarterly", b"lunch", b"meeting", b"garden"]
    line = lambda: b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
    body = b"".join(line() for _ in range(BIG_SIZE // 80))
    for i in range(BIG_COUNT):
        yield (f"From: heavy{i}@remote.test\nTo: heavy@example.test\n"
               f"Subject: big {i}\nDate: Mon, 7 Feb 2022 21:52:25 -0800\n\n").encode() + body


def small_messages(n=100):
    for i in range(n):
        yield (f"From: friend{i}@remote.test\nTo: light@example.test\n"
               f"Subject: note {i}\nDate: Mon, 7 Feb 2022 21:52:25 -0800\n\nsee you\n").encode()


def populate(server, owner=None):
    maildir(server.mail / "heavy", big_messages())
    light = server.mail / "light"
    maildir(light, small_messages())
    maildir(light / ".Other", small_messages())
    (light / "subscriptions").write_text("Other\n")
    if owner:
        subprocess.run(["chown", "-R", owner, str(server.mail)], check=True)


def light_rounds(port):
    """SELECT and FETCH latencies of the light user, in ms."""
    c = ImapClient(port, ("light@example.test", PASSWORD))
    selects, fetches = [], []
    try:
        for i in range(ROUNDS):
            folder = "INBOX" if i % 2 == 0 else "Other"
            selects.append(1000 * c.ok(f"SELECT {folder}"))
            fetches.append(1000 * c.ok("FETCH 1:10 (FLAGS BODY.PEEK[HEADER])"))
            time.sleep(0.02)
    finally:
        c.close()
    return selects, fetches


def heavy_load(port, stop: threading.Event, done: list):
    c = ImapClient(port, ("heavy@example.test", PASSWORD))
    c.ok("SELECT INBOX")
    try:
        while not stop.is_set():
            done.append(c.ok('SEARCH TEXT "zebra-not-there"'))
    finally:
        c.close()


def figures(samples):
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))]


def measure(cls, base: Path, users_text: str):
    server = cls(base, users_text)
    try:
        populate(server, MAIL_USER if cls is Dovecot else None)
        # Warm the page cache and each server's own indexes once.
        warm = ImapClient(server.port, ("heavy@example.test", PASSWORD))
        warm.ok("SELECT INBOX")
        warm.ok('SEARCH TEXT "zebra-not-there"')
        warm.close()
        light_rounds(server.port)
        quiet = light_rounds(server.port)
        stop, searches = threading.Event(), []
        threads = [threading.Thread(target=heavy_load, args=(server.port, stop, searches))
                   for _ in range(HEAVY_SESSIONS)]
        for t in threads:
            t.start()
        time.sleep(1)
        try:
            loaded = light_rounds(server.port)
        finally:
            stop.set()
            for t in threads:
                t.join()
        return quiet, loaded, searches
    finally:
        server.stop()


def main():
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    base = Path(tempfile.mkdtemp(prefix="postling-fair-bench-"))
    base.chmod(0o755)
    hashed = hash_password()
    users_text = "".join(f"{n}@example.test:{hashed}\n" for n in ("heavy", "light"))
    results = {}
    try:
        for cls in (Postling, Dovecot):
            work = base / cls.name
            work.mkdir()
            results[cls.name] = measure(cls, work, users_text)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"light user's latency (ms, median / p99 of {ROUNDS}); heavy user: "
          f"{HEAVY_SESSIONS} sessions of SEARCH TEXT over {BIG_COUNT} x {BIG_SIZE >> 10} KiB")
    for name, (quiet, loaded, searches) in results.items():
        (qs, qf), (ls, lf) = quiet, loaded
        print(f"  {name:8} SELECT quiet {figures(qs)[0]:7.1f} / {figures(qs)[1]:7.1f}   "
              f"loaded {figures(ls)[0]:7.1f} / {figures(ls)[1]:7.1f}")
        print(f"  {name:8} FETCH  quiet {figures(qf)[0]:7.1f} / {figures(qf)[1]:7.1f}   "
              f"loaded {figures(lf)[0]:7.1f} / {figures(lf)[1]:7.1f}   "
              f"(heavy searches done: {len(searches)}, "
              f"{statistics.median(searches):.2f} s each)" if searches else "")


if __name__ == "__main__":
    main()
