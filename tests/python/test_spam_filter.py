"""The filter that learns from each user (issue 19): `postling spam
train` from folders, a stranger's spam filed into the recipient's Junk
with X-Spam headers (and only for the recipient whose filter says so),
lessons from IMAP actions (MOVE into and out of Junk, $Junk, $NotJunk)
and from what the user sends, the reputation of people the user wrote
to, and junk_expire. Real clients: smtplib, imaplib, the CLI."""

import imaplib
import os
import random
import re
import smtplib
import struct
import subprocess
import time

import pytest

from conftest import BINARY, Server, users_with_password

PASSWORD = "filter-secret-1"
SPAM_WORDS = ("viagra casino jackpot winner lottery bitcoin crypto investment "
              "guaranteed unclaimed prize wire transfer urgent beneficiary "
              "pharmacy discount pills replica watches").split()
HAM_WORDS = ("meeting agenda minutes project schedule review draft budget "
             "quarterly report team lunch tomorrow thanks regards attached "
             "notes deadline release planning").split()
COMMON = "the and for with you this that have from your will our".split()


def body(words, rng, n=40):
    return " ".join(rng.choice(words + COMMON) for _ in range(n))


def message(subject, text, sender="someone@remote.test"):
    return (f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{random.random()}@remote.test>\r\n\r\n{text}\r\n")


def corpus(folder, words, n, seed):
    """`n` messages, one file each (the form corpora come in)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i:04}.eml").write_text(message(body(words, rng, 5), body(words, rng)))
    return folder


def counts(server, user):
    """(spam, ham) messages learnt, from the word file's header."""
    path = server.dir / "data/mail/example.test" / user / "spam.words"
    if not path.exists():
        return (0, 0)
    head = path.read_bytes()[:16]
    assert head[:8] == b"PLWORDS1"
    return struct.unpack("<II", head[8:16])


def spam_cli(server, *args):
    out = subprocess.run([BINARY, "spam", *args, "-c", str(server.conf)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def send(server, subject, text, to=("alice@example.test",), sender="someone@remote.test"):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as c:
        c.sendmail(sender, list(to), message(subject, text, sender))


def imap(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    assert m.login("alice@example.test", PASSWORD)[0] == "OK"
    return m


def subjects(m, folder):
    typ, _ = m.select(folder)
    assert typ == "OK", folder
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
    return {re.search(rb"Subject: (.*)\r\n", d[1]).group(1).decode(): d[1]
            for d in data if isinstance(d, tuple)}


@pytest.fixture(params=["maildir", "mbox"])
def filtered(request, tmp_path):
    users = users_with_password(tmp_path, PASSWORD)
    s = Server(tmp_path, request.param, users=users,
               extra="listen_imap = 127.0.0.1:0\nlisten_submission = 127.0.0.1:0\n"
                     "inbound_checks = none")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def trained(server, tmp_path, n=50):
    """Taught 50 of each: enough for the filter to speak."""
    out = spam_cli(server, "train", "alice@example.test",
                   "--spam", str(corpus(tmp_path / "spam", SPAM_WORDS, n, 1)),
                   "--ham", str(corpus(tmp_path / "ham", HAM_WORDS, n, 2)))
    assert f"learnt {n} spam and {n} ham" in out, out
    assert counts(server, "alice") == (n, n)


def test_spam_filed_into_junk_for_the_trained_user_only(filtered, tmp_path):
    s = filtered
    rng = random.Random(3)
    # Untrained: the filter abstains and everything goes to INBOX.
    send(s, "before training", body(SPAM_WORDS, rng))
    m = imap(s)
    assert "before training" in subjects(m, "INBOX")
    trained(s, tmp_path)
    # The CLI asks the same words: spam, ham.
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "a").write_text(message("x", body(SPAM_WORDS, rng)))
    assert spam_cli(s, "score", "alice@example.test", str(probe / "a")).startswith("spam ")
    # To both alice (trained) and bob (not): one copy each, filed apart.
    send(s, "cheap pills", body(SPAM_WORDS, rng), to=("alice@example.test", "bob@example.test"))
    send(s, "project notes", body(HAM_WORDS, rng))
    assert s.wait_logged("filter=alice:spam=")
    junk = subjects(m, "Junk")
    assert "cheap pills" in junk, junk
    head = junk["cheap pills"].decode()
    assert "X-Spam: yes\r\n" in head
    status = re.search(r"X-Spam-Status: Yes, score=(\S+) required=0\.950 reason=filter", head)
    assert status and float(status.group(1)) >= 0.95, head
    inbox = subjects(m, "INBOX")
    assert "project notes" in inbox and "cheap pills" not in inbox
    assert "X-Spam" not in inbox["project notes"].decode()
    m.logout()
    # bob has no words: his copy is in his INBOX, without the headers.
    bobs = [raw for raw in s.raw_messages("bob") if b"cheap pills" in raw]
    assert len(bobs) == 1 and b"X-Spam" not in bobs[0]


def test_imap_actions_teach(filtered, tmp_path):
    s = filtered
    rng = random.Random(4)
    for i in range(4):
        send(s, f"offer {i}", body(SPAM_WORDS, rng))
    send(s, "agenda", body(HAM_WORDS, rng))
    m = imap(s)
    inbox = subjects(m, "INBOX")
    assert len(inbox) == 5
    uids = {re.search(rb"Subject: (.*)\r\n", d[1]).group(1).decode(): d[0].split()[2].decode()
            for d in m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]
            if isinstance(d, tuple)}
    # Merely reading teaches nothing.
    assert counts(s, "alice") == (0, 0)
    # MOVE into Junk: spam.
    assert m.uid("MOVE", uids["offer 0"], "Junk")[0] == "OK"
    assert counts(s, "alice") == (1, 0)
    # $Junk: spam; and the MOVE that Thunderbird makes next is not a
    # second lesson.
    assert m.uid("STORE", uids["offer 1"], "+FLAGS", "($Junk)")[0] == "OK"
    assert counts(s, "alice") == (2, 0)
    assert m.uid("MOVE", uids["offer 1"], "Junk")[0] == "OK"
    assert counts(s, "alice") == (2, 0)
    # COPY into Junk teaches too.
    assert m.uid("COPY", uids["offer 2"], "Junk")[0] == "OK"
    assert counts(s, "alice") == (3, 0)
    # $NotJunk: ham.
    assert m.uid("STORE", uids["agenda"], "+FLAGS", "($NotJunk)")[0] == "OK"
    assert counts(s, "alice") == (3, 1)
    # Out of Junk: the user's earlier lesson is taken back, ham learnt.
    m.select("Junk")
    typ, data = m.uid("SEARCH", "SUBJECT", '"offer 0"')
    assert m.uid("MOVE", data[0].decode().split()[0], "INBOX")[0] == "OK"
    assert counts(s, "alice") == (2, 2)
    m.logout()


def test_sent_mail_teaches_and_vouches(filtered, tmp_path):
    s = filtered
    trained(s, tmp_path)
    # alice writes to carol: ham, and carol is someone she writes to.
    with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30) as c:
        c.login("alice@example.test", PASSWORD)
        c.sendmail("alice@example.test", ["carol@remote.test"],
                   "From: alice@example.test\r\nTo: carol@remote.test\r\n"
                   "Subject: hello carol\r\n\r\nsee you at the meeting tomorrow\r\n")
    deadline = time.monotonic() + 10
    while counts(s, "alice")[1] < 51 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(s, "alice") == (50, 51)
    # Spammy words from carol: she is known, not scored.
    rng = random.Random(5)
    send(s, "from carol", body(SPAM_WORDS, rng), sender="carol@remote.test")
    send(s, "from a stranger", body(SPAM_WORDS, rng), sender="dave@remote.test")
    assert s.wait_logged("filter=alice:known-sender")
    m = imap(s)
    assert "from carol" in subjects(m, "INBOX")
    assert "from a stranger" in subjects(m, "Junk")
    m.logout()


def test_junk_expire_removes_old_junk(tmp_path):
    users = users_with_password(tmp_path, PASSWORD)
    # Old and new Junk, put there before the server starts.
    junk = tmp_path / "data/mail/example.test/alice/.Junk"
    for sub in ("cur", "new", "tmp"):
        (junk / sub).mkdir(parents=True)
    old, new = junk / "new/1.old:2,", junk / "new/2.new:2,"
    old.write_text(message("old junk", "x"))
    new.write_text(message("new junk", "x"))
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    os.utime(new, (time.time() - 3600,) * 2)
    s = Server(tmp_path, "maildir", users=users, extra="junk_expire = 2d")
    try:
        assert s.wait_logged("junk_expire: 1 message(s) removed", timeout=10), "".join(s.log)
        assert not old.exists() and new.exists()
    finally:
        s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def test_sieve_spamtest_reads_the_filters_score(filtered, tmp_path):
    """RFC 5235 fed by the filter: a trained user's script sorts by the
    score (1-10, or :percent), and the implicit keep is where the filter
    put the message."""
    s = filtered
    rng = random.Random(5)
    trained(s, tmp_path)
    root = s.dir / "data/mail/example.test/alice"
    (root / "sieve").mkdir(parents=True, exist_ok=True)
    (root / "sieve/main.sieve").write_text(
        'require ["spamtest", "spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "9" { fileinto "Spammy"; stop; }\n'
        'if spamtest :percent :value "le" :comparator "i;ascii-numeric" "20" { fileinto "Clean"; }\n')
    (root / ".dovecot.sieve").symlink_to("sieve/main.sieve")
    send(s, "cheap pills", body(SPAM_WORDS, rng))
    send(s, "project notes", body(HAM_WORDS, rng))
    m = imap(s)
    assert "cheap pills" in subjects(m, "Spammy")
    assert "project notes" in subjects(m, "Clean")
    assert "cheap pills" not in subjects(m, "Junk")
    m.logout()
