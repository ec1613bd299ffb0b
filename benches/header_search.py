#!/usr/bin/env python3
"""`make bench-headers`: header searches, SORT and THREAD on a big
folder, postling and a private Dovecot side by side, cold (the first
time, each server building its cache) and warm (the median of the next
fifteen), with the size of each server's cache per message.

With BENCH_CORPUS set to a folder of real messages, one file each
(the SpamAssassin public corpus, 6,047 messages, is what the README's
figures use), the folder holds every file found under it, byte for
byte but for a leading mbox "From " line. Without it, BENCH_MESSAGES
(5,000) messages are written here from a fixed seed: display names, To
and Cc lists, subjects with reply markers and encoded words, dates over
six years, threads with References, plain and multipart bodies of 1 to
20 KiB (none ships with Debian, so this is what runs anywhere).

Everything listens on 127.0.0.1 high ports; every process started here is
stopped here."""

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchnet import ImapClient
from imap_vs_dovecot import MAIL_USER, PASSWORD, POSTLING, Dovecot, Postling
from pop3_vs_dovecot import hash_password

CORPUS = os.environ.get("BENCH_CORPUS")
COUNT = int(os.environ.get("BENCH_MESSAGES", "5000"))
WARM_RUNS = 15
SEARCHES = {
    "generated": ['SEARCH FROM "garcia"', 'SEARCH SUBJECT "budget"',
                  'SEARCH HEADER Message-ID "<m777."'],
    "corpus": ['SEARCH FROM "yahoo"', 'SEARCH SUBJECT "linux"',
               'SEARCH HEADER Message-ID "@example"'],
}
COMMANDS = SEARCHES["corpus" if CORPUS else "generated"] + [
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
]

FIRST = ["Ana", "Bo", "Chen", "Dana", "Emil", "Fatima", "Gustav", "Hana", "Ivo", "Jun",
         "Kofi", "Lena", "Mara", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tara", "Uma"]
LAST = ["Garcia", "Meyer", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva", "Tanaka",
        "Umarov", "Varga", "Weber", "Xu", "Yilmaz", "Zhou", "Kowalski", "Jensen"]
WORDS = ["budget", "meeting", "report", "invoice", "trip", "lunch", "release", "server",
         "garden", "party", "contract", "draft", "review", "ticket", "backup", "photos"]
DOMAINS = ["example.org", "mail.example.net", "lists.example.com", "corp.example"]


def person(rnd):
    f, l = rnd.choice(FIRST), rnd.choice(LAST)
    addr = f"{f.lower()}.{l.lower()}@{rnd.choice(DOMAINS)}"
    form = rnd.random()
    if form < 0.6:
        return f"{f} {l} <{addr}>"
    if form < 0.75:
        return f'"{l}, {f}" <{addr}>'
    if form < 0.85:
        return f"=?utf-8?q?{f}_{l}?= <{addr}>"
    return addr


def messages(rnd):
    threads = []
    for i in range(COUNT):
        day = 1_500_000_000 + rnd.randrange(6 * 365 * 86400)
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(day))
        mid = f"<m{i}.{rnd.randrange(10**6)}@{rnd.choice(DOMAINS)}>"
        topic = " ".join(rnd.sample(WORDS, 3))
        refs = ""
        if threads and rnd.random() < 0.5:
            parent = rnd.choice(threads)
            topic = parent[1]
            refs = f"References: {' '.join(parent[2] + [parent[0]])}\n"
            threads.append((mid, topic, parent[2] + [parent[0]]))
            subject = rnd.choice(["Re: ", "RE: ", "Re: Re: ", "Fwd: ", "[team] Re: "]) + topic
        else:
            threads.append((mid, topic, []))
            subject = topic
        to = ", ".join(person(rnd) for _ in range(rnd.randrange(1, 4)))
        cc = ", ".join(person(rnd) for _ in range(rnd.randrange(0, 3)))
        body = "\n".join(" ".join(rnd.choice(WORDS) for _ in range(12))
                         for _ in range(rnd.randrange(10, 250)))
        head = (f"Return-Path: <bounce@{rnd.choice(DOMAINS)}>\n"
                f"Received: from relay.example.net by mx.example.org; {date}\n"
                f"From: {person(rnd)}\nTo: {to}\n" + (f"Cc: {cc}\n" if cc else "") +
                f"Subject: {subject}\nDate: {date}\nMessage-ID: {mid}\n{refs}"
                "MIME-Version: 1.0\n")
        if rnd.random() < 0.3:
            text = (head + "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                    "Content-Type: text/plain; charset=utf-8\n\n" + body +
                    "\n--b\nContent-Type: application/pdf; name=notes.pdf\n"
                    "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n")
        else:
            text = head + "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n"
        yield text.encode()


def corpus_messages(root: Path):
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes()
        if path.name.lower().startswith(("readme", "cmds")) or b"\n\n" not in text:
            continue
        if text.startswith(b"From "):
            text = text[text.find(b"\n") + 1:]
        yield text


def populate(folder: Path):
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    source = corpus_messages(Path(CORPUS)) if CORPUS else messages(random.Random(1))
    for i, text in enumerate(source):
        name = f"{1700000000 + i}.M{i}P1Q{i}.bench,S={len(text)}"
        (folder / "cur" / (name + ":2,S")).write_bytes(text)
    return i + 1


def measure(cls, base, users_text):
    server = cls(base, users_text)
    try:
        box = server.mail / "reader"
        count = populate(box)
        if cls is Dovecot:
            subprocess.run(["chown", "-R", MAIL_USER, str(server.mail)], check=True)
        c = ImapClient(server.port, ("reader@example.test", PASSWORD))
        c.ok("SELECT INBOX")
        results = {}
        for command in COMMANDS:
            cold = c.ok(command)
            warm = statistics.median(c.ok(command) for _ in range(WARM_RUNS))
            results[command] = (cold, warm)
        c.close()
        cache = [p for p in box.rglob("*")
                 if p.name in ("postling-headers", "postling-sortkeys", "dovecot.index.cache")]
        size = sum(p.stat().st_size for p in cache)
        return results, size / count, count
    finally:
        server.stop()


def main():
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    base = Path(tempfile.mkdtemp(prefix="postling-headers-bench-"))
    base.chmod(0o755)
    users_text = f"reader@example.test:{hash_password()}\n"
    found = {}
    try:
        for cls in (Postling, Dovecot):
            work = base / cls.name
            work.mkdir()
            found[cls.name] = measure(cls, work, users_text)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    (p, psize, count), (d, dsize, _) = found["postling"], found["dovecot"]
    print(f"{count} messages ({CORPUS or 'generated'}); ms cold / warm (median of {WARM_RUNS}):")
    for command in COMMANDS:
        print(f"  {command:32} postling {1000 * p[command][0]:8.1f} / {1000 * p[command][1]:7.1f}"
              f"   dovecot {1000 * d[command][0]:8.1f} / {1000 * d[command][1]:7.1f}")
    print(f"cache per message: postling-headers + postling-sortkeys {psize:.0f} octets, "
          f"dovecot.index.cache {dsize:.0f} octets")


if __name__ == "__main__":
    main()
