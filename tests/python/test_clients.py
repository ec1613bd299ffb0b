"""Real clients against the real binary: smtplib, swaks, mutt; what they
sent is read back with Python's mailbox module and with mutt."""

import email.policy
import mailbox
import re
import shutil
import smtplib
import subprocess
from email.message import EmailMessage

import pytest


def make_message(subject, body, to="bob@example.test"):
    msg = EmailMessage()
    msg["From"] = "sender@remote.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def without_trace(raw: bytes) -> bytes:
    """The message as the client sent it, minus our three trace headers."""
    lines = raw.split(b"\n")
    i = 0
    while lines[i].startswith((b"Return-Path:", b"Delivered-To:", b"Authentication-Results:",
                               b"Received:", b"\t")):
        i += 1
    return b"\n".join(lines[i:])


def test_smtplib_send_is_stored_byte_for_byte(server):
    sent = (b"From: sender@remote.test\r\nTo: bob@example.test\r\n"
            b"Subject: hello\r\n\r\nfirst line\r\n.leading dot\r\n"
            b"From here\r\n>From there\r\n\r\n\r\nlast\r\n")
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        code, caps = s.ehlo("client.test")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "smtputf8", "chunking"):
            assert s.has_extn(ext), ext
        refused = s.sendmail("sender@remote.test", ["bob@example.test"], sent)
        assert refused == {}
    stored = server.messages("bob")
    assert len(stored) == 1
    got = stored[0]
    assert got["Return-Path"] == "<sender@remote.test>"
    assert got["Delivered-To"] == "bob@example.test"
    assert "by mx.example.test (postling) with ESMTP id" in got["Received"]
    stored = without_trace(server.raw_messages("bob")[0])
    assert stored == sent.replace(b"\r\n", b"\n")


def test_utf8_and_8bit(server):
    msg = EmailMessage()
    msg["From"] = "jörg@remote.test"
    msg["To"] = "bob@example.test"
    msg["Subject"] = "Grüße"
    msg.set_content("Ünïcödé body ✓\n", cte="8bit")
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        s.send_message(msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    stored = server.messages("bob")
    assert stored[0]["Subject"] == "Grüße"
    assert " with UTF8SMTP id " in stored[0]["Received"]
    assert "Ünïcödé body ✓" in stored[0].get_payload(decode=True).decode()


def test_unknown_user_and_relay_are_refused(server):
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@remote.test", ["nobody@example.test"], b"x")
        assert e.value.recipients["nobody@example.test"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@remote.test", ["victim@elsewhere.test"], b"x")
        code, text = e.value.recipients["victim@elsewhere.test"]
        assert code == 550 and text.startswith(b"5.7.1")


def test_alias_and_plus_address_and_many_messages(server):
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        for i in range(20):
            s.send_message(make_message(f"m{i:02}", f"body {i}\n",
                                        to="team@example.test"))
        s.send_message(make_message("plus", "tagged\n"),
                       to_addrs=["alice+news@example.test"])
    alice = server.messages("alice")
    bob = server.messages("bob")
    assert [m["Subject"] for m in bob] == [f"m{i:02}" for i in range(20)]
    assert len(alice) == 21
    plus = [m for m in alice if m["Subject"] == "plus"][0]
    assert plus["Delivered-To"] == "alice+news@example.test"


def test_oversize_is_refused_by_smtplib(server):
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 400_000
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("a@remote.test", ["bob@example.test"], big)
        assert e.value.smtp_code == 552


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks missing")
def test_swaks_with_pipelining_and_attachment(server, tmp_path):
    attachment = tmp_path / "report.bin"
    attachment.write_bytes(bytes(range(256)) * 64)
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.port}", "--pipeline",
         "--from", "swaks@remote.test", "--to", "alice@example.test",
         "--header", "Subject: swaks", "--attach", str(attachment)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0 Ok: queued as" in out.stdout
    stored = server.messages("alice")
    assert stored[0]["Subject"] == "swaks"
    parts = [p for p in stored[0].walk() if p.get_filename() == "report.bin"]
    assert parts[0].get_payload(decode=True) == attachment.read_bytes()


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt missing")
def test_mutt_reads_the_mailbox(server, tmp_path):
    with smtplib.SMTP("127.0.0.1", server.port) as s:
        for subject in ("first", "second", "third"):
            s.send_message(make_message(subject, f"{subject} body\nFrom x\n"))
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        "set mbox_type=mbox\nset confirmcreate=no\nset confirmappend=no\n"
        "set delete=no\nset move=no\nset quit=yes\n"
        "set sort=date-received\n"
        # Without a folder mutt complains about ~/Mail and eats keys.
        f"set folder={tmp_path}\n"
    )
    copy = tmp_path / "copy.mbox"
    keys = f"<tag-pattern>~A<enter><tag-prefix><copy-message>{copy}<enter><quit>"
    mutt = (f"mutt -n -F {muttrc} -f {server.mailbox_path('bob')} "
            f"-e 'push \"{keys}\"'")
    out = subprocess.run(["script", "-qec", mutt, "/dev/null"],
                         capture_output=True, timeout=60,
                         env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                              "HOME": str(tmp_path)})
    assert out.returncode == 0, out
    copied = list(mailbox.mbox(str(copy)))
    screen = out.stdout.decode(errors="replace")
    assert sorted(m["Subject"] for m in copied) == ["first", "second", "third"], screen
    for m in copied:
        # mbox readers differ on how many '>' a quoted From line keeps
        # (mboxo vs mboxrd); the text around it must be exact.
        body = re.sub(r"(?m)^>+From ", "From ", m.get_payload())
        assert body == f"{m['Subject']} body\nFrom x\n"
