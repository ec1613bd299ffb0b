"""A Maildir written by a real Dovecot (doveadm save, flags set by
doveadm) moved under postling: IMAP keeps Dovecot's UIDVALIDITY, UIDs
and flags, POP3 gives the same UIDLs Dovecot's own pop3 gave, and new
mail continues Dovecot's UID sequence in Dovecot's dovecot-uidlist."""

import imaplib
import os
import re
import shutil
import smtplib
import tempfile
import subprocess
from pathlib import Path

import pytest

from conftest import Server, pop3_login, users_with_password

PASSWORD = "migrated pw"
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"


def dovecot(tmp: Path, maildir: Path):
    """A config for doveadm and Dovecot's pop3 run by hand on `maildir`,
    as the unprivileged `nobody` (Dovecot refuses mail access as root)."""
    conf = tmp / "dovecot.conf"
    conf.write_text(f"""mail_location = maildir:{maildir}
log_path = {tmp}/dovecot.log
base_dir = {tmp}/dovecot-run
state_dir = {tmp}/dovecot-state
mail_uid = 65534
mail_gid = 65534
""")
    for d in ("dovecot-run", "dovecot-state"):
        (tmp / d).mkdir(exist_ok=True)
    env = {**os.environ, "USER": "alice", "HOME": str(maildir.parent)}
    return conf, env


@pytest.mark.skipif(not os.path.exists(DOVECOT_POP3), reason="dovecot-pop3d missing")
def test_dovecot_maildir_keeps_uids_flags_and_uidls():
    # Outside pytest's private folder: Dovecot runs as nobody here.
    tmp_path = Path(tempfile.mkdtemp(prefix="postling-dovecot-"))
    os.chmod(tmp_path, 0o755)
    try:
        migrate(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def migrate(tmp_path: Path):
    maildir = tmp_path / "data/mail/example.test/alice"
    maildir.parent.mkdir(parents=True)
    for d in (tmp_path / "data", tmp_path / "data/mail"):
        os.chmod(d, 0o755)
    os.chown(maildir.parent, 65534, 65534)
    conf, env = dovecot(tmp_path, maildir)
    for subject in ("one", "two", "three"):
        subprocess.run(["doveadm", "-c", str(conf), "save"], check=True, env=env,
                       input=f"Subject: {subject}\n\nbody of {subject}\n".encode())
    subprocess.run(["doveadm", "-c", str(conf), "flags", "add", "\\Seen \\Flagged",
                    "mailbox", "INBOX", "uid", "2"], check=True, env=env)
    subprocess.run(["doveadm", "-c", str(conf), "expunge", "mailbox", "INBOX",
                    "uid", "1"], check=True, env=env)
    status = subprocess.run(["doveadm", "-c", str(conf), "mailbox", "status",
                             "uidvalidity", "INBOX"], check=True, env=env,
                            capture_output=True, text=True).stdout
    validity = re.search(r"uidvalidity=(\d+)", status).group(1)
    pop = subprocess.run([DOVECOT_POP3, "-c", str(conf)], input=b"UIDL\r\nQUIT\r\n",
                         env=env, capture_output=True, check=True).stdout
    dovecot_uidls = re.findall(rb"^\d+ (\S+)\r$", pop, re.M)
    assert len(dovecot_uidls) == 2

    s = Server(tmp_path, users=users_with_password(tmp_path, PASSWORD),
               extra="listen_imap = 127.0.0.1:0\nlisten_pop3 = 127.0.0.1:0")
    try:
        # POP3 first, before IMAP touches anything: Dovecot's UIDLs.
        sock, f, answer = pop3_login(s.ports["POP3"], "alice@example.test", PASSWORD)
        assert answer.startswith(b"+OK")
        sock.sendall(b"UIDL\r\n")
        assert f.readline() == b"+OK\r\n"
        ours = []
        while (line := f.readline()) != b".\r\n":
            ours.append(line.split()[1])
        sock.sendall(b"QUIT\r\n")
        f.readline()
        sock.close()
        assert ours == dovecot_uidls

        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=30)
        m.login("alice@example.test", PASSWORD)
        typ, data = m.status("INBOX", "(UIDVALIDITY MESSAGES UIDNEXT)")
        assert re.search(rb"UIDVALIDITY " + validity.encode(), data[0]), data
        assert b"MESSAGES 2 UIDNEXT 4" in data[0]
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        got = [(re.search(rb"UID (\d+)", d[0]).group(1), b"\\Seen" in d[0],
                b"\\Flagged" in d[0], d[1].strip()) for d in data if isinstance(d, tuple)]
        assert got == [(b"2", True, True, b"Subject: two"),
                       (b"3", False, False, b"Subject: three")]
        m.logout()
        # New mail continues the sequence, in Dovecot's own list.
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("x@y.test", ["alice@example.test"], "Subject: four\r\n\r\nhi\r\n")
        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=30)
        m.login("alice@example.test", PASSWORD)
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "ALL")
        assert data == [b"2 3 4"]
        m.logout()
        uidlist = (maildir / "dovecot-uidlist").read_text()
        assert uidlist.startswith(f"3 V{validity} N5 G")
    finally:
        s.stop()
