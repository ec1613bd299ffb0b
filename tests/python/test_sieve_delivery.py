"""Sieve at delivery, through the real server, for what Pigeonhole's
sieve-test cannot show: vacation's memory and its refusals, a rejection
in the dialog or as a notice, sieve_before and stop, a failing script,
redirect loops, and flags in mbox."""

import os
import re
import smtplib
import subprocess

import pytest

from conftest import BINARY, Server


def install(server: Server, user: str, script: str):
    root = server.dir / "data/mail/example.test" / user
    (root / "sieve").mkdir(parents=True, exist_ok=True)
    (root / "sieve/main.sieve").write_text(script)
    link = root / ".dovecot.sieve"
    if not link.is_symlink():
        link.symlink_to("sieve/main.sieve")


def send(server: Server, sender: str, rcpts, headers: str = "", body: str = "hi\n"):
    msg = (f"From: <{sender or 'robot@x.test'}>\nTo: alice@example.test\nSubject: test\n"
           f"{headers}\n{body}").replace("\n", "\r\n")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        return s.sendmail(sender, rcpts, msg.encode())


def stored(server: Server, user: str) -> int:
    """Messages in the user's INBOX (none before the first)."""
    root = server.mailbox_path(user)
    return sum(len(os.listdir(root / d)) for d in ("new", "cur") if (root / d).is_dir())


def queued_to(server: Server):
    """(envelope sender, recipients, message) of each queue file."""
    out = []
    for text in server.queued():
        head, _, msg = text.partition("\n\n")
        sender = re.search(r"^from <([^>]*)>", head, re.M).group(1)
        out.append((sender, re.findall(r"^to <([^>]*)>", head, re.M), msg))
    return out


@pytest.fixture
def srv(tmp_path):
    s = Server(tmp_path, "maildir", extra="queue_retry = 1h")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def test_vacation_answers_once_never_robots(srv):
    install(srv, "alice", 'require "vacation"; vacation :days 1 :subject "Away" "Back on Monday.";')
    send(srv, "friend@far.test", ["alice@example.test"])
    send(srv, "friend@far.test", ["alice@example.test"])  # within the period
    send(srv, "", ["alice@example.test"])  # <> is never answered
    send(srv, "other@far.test", ["alice@example.test"], "Auto-Submitted: auto-generated\n")
    send(srv, "lister@far.test", ["alice@example.test"], "List-Id: <l.far.test>\n")
    replies = [q for q in queued_to(srv) if "Auto-Submitted: auto-replied" in q[2]]
    assert len(replies) == 1, replies
    sender, rcpts, msg = replies[0]
    assert sender == "" and rcpts == ["friend@far.test"]
    assert "Subject: Away" in msg and "Back on Monday." in msg
    assert stored(srv, "alice") == 5, "every message is kept"
    memory = (srv.mailbox_path("alice") / "sieve/.memory").read_text()
    assert "friend@far.test" not in memory


def test_reject_in_the_dialog_or_as_a_notice(srv):
    install(srv, "alice", 'require "reject"; reject text:\nNot here,\nplease.\n.\n;')
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "friend@far.test", ["alice@example.test"])
    assert e.value.smtp_code == 550 and b"5.7.1 Not here, please." in e.value.smtp_error
    assert stored(srv, "alice") == 0
    # Two recipients: bob gets it; the sender gets a notice for alice.
    send(srv, "friend@far.test", ["alice@example.test", "bob@example.test"])
    assert stored(srv, "alice") == 0
    assert len(srv.raw_messages("bob")) == 1
    notices = [q for q in queued_to(srv) if q[1] == ["friend@far.test"]]
    assert len(notices) == 1 and notices[0][0] == ""
    assert "550 5.7.1 Not here" in notices[0][2]


def test_sieve_before_runs_first_and_stop_ends_it(tmp_path):
    before = tmp_path / "before.sieve"
    before.write_text('require ["fileinto", "copy"];\n'
                      'if header :contains "subject" "audit" { fileinto :copy "Audit"; }\n'
                      'if header :contains "subject" "final" { fileinto "Final"; stop; }\n')
    s = Server(tmp_path, "maildir", extra=f"sieve_before = {before}")
    try:
        install(s, "alice", 'require "fileinto"; fileinto "Mine";')
        root = s.mailbox_path("alice")
        send(s, "f@far.test", ["alice@example.test"], "Subject: audit\n")
        assert len(os.listdir(root / ".Audit/new")) == 1
        assert len(os.listdir(root / ".Mine/new")) == 1, "the user's script ran after"
        send(s, "f@far.test", ["alice@example.test"], "Subject: final\n")
        assert len(os.listdir(root / ".Final/new")) == 1
        assert len(os.listdir(root / ".Mine/new")) == 1, "stop ended processing"
    finally:
        s.stop()


def test_failing_script_keeps_and_logs(srv):
    install(srv, "alice", 'redirect "a@x.test"; redirect "b@x.test"; redirect "c@x.test";'
                          'redirect "d@x.test"; redirect "e@x.test";')
    send(srv, "f@far.test", ["alice@example.test"])
    assert stored(srv, "alice") == 1
    assert srv.wait_logged("more than 4 redirects")
    assert queued_to(srv) == [], "nothing of a failed run is done"
    install(srv, "alice", "if frobnicate { }")
    send(srv, "f@far.test", ["alice@example.test"])
    assert stored(srv, "alice") == 2
    assert srv.wait_logged("main.sieve: line 1")


def test_redirect_loops_are_kept(srv):
    install(srv, "alice", 'redirect "alice@elsewhere.test";')
    send(srv, "f@far.test", ["alice@example.test"])
    first = queued_to(srv)
    assert len(first) == 1 and first[0][1] == ["alice@elsewhere.test"]
    # Sent on from our domain, the sender rewritten with SRS.
    assert first[0][0].startswith("SRS0=") and first[0][0].endswith("@example.test"), first[0][0]
    assert "X-Sieve-Redirected-From: alice@example.test" in first[0][2]
    assert stored(srv, "alice") == 0
    send(srv, "f@far.test", ["alice@example.test"],
         "X-Sieve-Redirected-From: alice@example.test\n")
    assert len(queued_to(srv)) == 1, "not sent round again"
    assert stored(srv, "alice") == 1
    assert srv.wait_logged("redirect loop")


def test_flags_in_mbox(tmp_path):
    s = Server(tmp_path, "mbox")
    try:
        install(s, "alice", 'require ["imap4flags", "fileinto"];'
                            'fileinto :flags ["\\\\Seen", "\\\\Flagged", "$Work"] "Tagged";')
        send(s, "f@far.test", ["alice@example.test"])
        text = (s.dir / "data/mail/example.test/alice/folders/Tagged").read_text()
        assert "Status: RO\n" in text and "X-Status: F\n" in text
        assert "X-Keywords: $Work\n" in text
    finally:
        s.stop()


def test_check_warns_of_a_broken_sieve_before(tmp_path):
    before = tmp_path / "before.sieve"
    before.write_text('keep;\nfileinto "x";\n')
    s = Server(tmp_path, "maildir", extra=f"sieve_before = {before}")
    try:
        r = subprocess.run([BINARY, "check", "-c", str(s.conf)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0
        assert "sieve_before" in r.stderr and "line 2" in r.stderr, r.stderr
        # Mail still flows: the broken script is skipped, the message kept.
        send(s, "f@far.test", ["alice@example.test"])
        assert stored(s, "alice") == 1
    finally:
        s.stop()


def test_ereject_rfc5429_example(srv):
    """RFC 5429 §2.1's ereject example (Debian's Pigeonhole has no
    ereject to compare with): refused in the dialog."""
    install(srv, "alice", 'require ["ereject"];\n'
                          'if address "from" "someone@example.com" {\n'
                          '    ereject "I no longer accept mail from this address";\n}\n')
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "someone@example.com", ["alice@example.test"])
    assert e.value.smtp_code == 550
    assert b"I no longer accept mail from this address" in e.value.smtp_error
    send(srv, "other@example.com", ["alice@example.test"])
    assert stored(srv, "alice") == 1
