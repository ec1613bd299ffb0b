"""Quotas: `quota` and the users file's `userdb_quota_rule`, usage
tracked in maildirsize as mail comes and goes, IMAP QUOTA (RFC 9208),
452 at RCPT and 552 at the end of DATA as Dovecot's quota-status
gives them, NO [OVERQUOTA] for APPEND and COPY, the 90 % notice."""

import imaplib
import re
import smtplib

import pytest

from conftest import Server, add_user

LIMIT = 20 * 1024


@pytest.fixture(params=["maildir", "mbox"])
def srv(request, tmp_path):
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", "alice pw")
    add_user(conf, "bob@example.test", "bob pw")
    users = (tmp_path / "users").read_text().splitlines()
    # alice's own limit; bob has the default (none).
    assert users[0].endswith("::::::")
    users[0] += "userdb_quota_rule=*:storage=20K"
    (tmp_path / "users").write_text("\n".join(users) + "\n")
    s = Server(tmp_path, request.param, users=(tmp_path / "users").read_text(),
               extra="listen_imap = 127.0.0.1:0\nqueue_retry = 1h")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def message(size: int, subject="m") -> bytes:
    body = ("x" * 70 + "\r\n") * (size // 72 + 1)
    return f"From: f@far.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\n{body}".encode()


def imap(srv):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"])
    c.login("alice@example.test", "alice pw")
    return c


def quota(c):
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK", data
    text = b" ".join(d if isinstance(d, bytes) else b"" for d in sum(data, []))
    m = re.search(rb"STORAGE (\d+) (\d+)", text)
    return int(m.group(1)), int(m.group(2))


def test_quota_end_to_end(srv):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("f@far.test", ["alice@example.test"], message(8000, "one"))
        # Too big for what is left, as the client declares it: 452 at RCPT.
        s.mail("f@far.test", ["SIZE=15000"])
        code, text = s.rcpt("alice@example.test")
        assert code == 452 and b"4.2.2" in text, (code, text)
        s.rset()
        # Not declared (no SIZE=): refused at the end of DATA with 552.
        assert s.mail("f@far.test")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(message(15000, "two"))
        assert code == 552 and b"5.2.2" in text, (code, text)
        # bob has no limit and gets it; alice's sender gets a notice.
        assert s.mail("f@far.test")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(message(15000, "three"))[0] == 250
        # Past 90 %: a notice in alice's INBOX.
        s.sendmail("f@far.test", ["alice@example.test"], message(10000, "four"))
        assert s.mail("f@far.test", ["SIZE=5000"])[0] == 250
        assert s.rcpt("alice@example.test")[0] == 452
        s.rset()
    assert len(srv.raw_messages("bob")) == 1
    notices = [q for q in srv.queued() if "to <f@far.test>" in q]
    assert len(notices) == 1 and "552 5.2.2 Mailbox full" in notices[0]
    subjects = sorted(m["Subject"] for m in srv.messages("alice"))
    assert subjects == ["Your mailbox is 90% full", "four", "one"], subjects
    c = imap(srv)
    assert b"QUOTA=RES-STORAGE" in c.capability()[1][0]
    used, limit = quota(c)
    assert limit == 20 and 17 <= used <= 20, (used, limit)
    typ, data = c.getquota('""')
    assert typ == "OK" and b"(STORAGE" in data[0]
    typ, data = c._simple_command("SETQUOTA", '""', "(STORAGE 100)")
    assert typ == "NO"
    typ, data = c.append("INBOX", None, None, message(5000))
    assert typ == "NO" and b"OVERQUOTA" in data[0], data
    c.select("INBOX")
    typ, data = c.copy("1:*", "Sent")
    assert typ == "NO" and b"OVERQUOTA" in data[0], data
    # Mail that leaves frees its room.
    c.store("1:*", "+FLAGS", "\\Deleted")
    c.expunge()
    used, _ = quota(c)
    assert used <= 1, used
    c.logout()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("f@far.test", ["alice@example.test"], message(8000, "five"))
    root = srv.dir / "data/mail/example.test/alice"
    tracked = (root / "maildirsize").read_text()
    (root / "maildirsize").unlink()
    c = imap(srv)
    rebuilt, _ = quota(c)
    c.logout()
    assert 7 <= rebuilt <= 9, (rebuilt, tracked)


def test_no_quota_no_root(srv):
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"])
    c.login("bob@example.test", "bob pw")
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK" and all(b"STORAGE" not in d for d in sum(data, []) if isinstance(d, bytes))
    typ, data = c.getquota('""')
    assert typ == "NO"
    c.logout()
