"""Logins through a trusted front end (issue 15): a webmail such as
Roundcube logs in for many users from one address. With
login_trusted_networks it may name each client (IMAP ID
x-originating-ip, SMTP and POP3 XCLIENT ADDR=); the limiter and the logs
use that address. Failures it relays without naming a client count per
user name, never against the front end, so one user's typos do not lock
every webmail user out."""

import imaplib
import poplib
import smtplib
import subprocess
import time

import pytest

from conftest import ROOT, Server, users_with_password

PASSWORD = "front-end-pw-1"


def start(tmp_path, trusted: str):
    users = users_with_password(tmp_path, PASSWORD)
    return Server(tmp_path, users=users, extra=f"""
        listen_imap = 127.0.0.1:0
        listen_pop3 = 127.0.0.1:0
        listen_submission = 127.0.0.1:0
        auth_failure_limit = 3
        login_trusted_networks = {trusted}
    """)


@pytest.fixture
def front(tmp_path):
    s = start(tmp_path, "127.0.0.0/8")
    yield s
    s.stop()


def imap(server, client_ip=None):
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=30)
    if client_ip:
        typ, _ = m.xatom("ID", f'("name" "roundcube" "x-originating-ip" "{client_ip}")')
        assert typ == "OK"
    return m


def imap_login(server, user, password, client_ip=None) -> str:
    """OK, NO, or BYE (locked out, at connect or at login)."""
    try:
        m = imap(server, client_ip)
        m.login(user, password)
        m.logout()
        return "OK"
    except imaplib.IMAP4.abort:
        return "BYE"
    except imaplib.IMAP4.error as e:
        return "BYE" if "too many" in str(e).lower() else "NO"


def test_unnamed_failures_count_per_user_not_against_the_front_end(front):
    for _ in range(3):
        assert imap_login(front, "nobody@example.test", "wrong") == "NO"
    # That name is locked out now...
    assert imap_login(front, "nobody@example.test", "wrong") == "BYE"
    # ...but every other user of the front end still logs in.
    assert imap_login(front, "alice@example.test", PASSWORD) == "OK"
    with smtplib.SMTP("127.0.0.1", front.ports["submission"], timeout=30) as c:
        c.login("alice@example.test", PASSWORD)
    assert front.wait_logged('locked out: too many authentication failures')


def test_a_named_client_is_limited_and_logged_by_its_own_address(front):
    for _ in range(3):
        assert imap_login(front, "alice@example.test", "wrong", "192.0.2.7") == "NO"
    assert front.wait_logged('auth failed user="alice@example.test" ip=192.0.2.7 via=127.0.0.1')
    # fail2ban's filter leaves a named client's failures to the limiter:
    # banning it at the firewall would not stop the front end's traffic.
    log = front.dir / "postling.log"
    log.write_text("".join(front.log))
    out = subprocess.run(
        ["fail2ban-regex", "-o", "ip", str(log), str(ROOT / "conf/fail2ban/postling.conf")],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "192.0.2.7" not in out.stdout, out.stdout
    # The client that guessed is out, even with the right password...
    assert imap_login(front, "alice@example.test", PASSWORD, "192.0.2.7") == "BYE"
    # ...the same user from another client is not, nor the front end.
    assert imap_login(front, "alice@example.test", PASSWORD, "192.0.2.8") == "OK"
    assert imap_login(front, "alice@example.test", PASSWORD) == "OK"
    # SMTP and POP3 name it with XCLIENT, and share the same limiter.
    with smtplib.SMTP("127.0.0.1", front.ports["submission"], timeout=30) as c:
        assert "xclient" in c.ehlo()[1].decode().lower()
        code, _ = c.docmd("XCLIENT", "ADDR=192.0.2.7")
        assert code == 220
        c.ehlo()
        with pytest.raises(smtplib.SMTPException):
            c.login("alice@example.test", PASSWORD)
    p = poplib.POP3("127.0.0.1", front.ports["POP3"], timeout=30)
    assert p._shortcmd("XCLIENT ADDR=192.0.2.9").startswith(b"+OK")
    p.user("alice@example.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_clients_not_in_login_trusted_networks_cannot_name_one(tmp_path):
    s = start(tmp_path, "192.0.2.0/24")
    try:
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30) as c:
            assert "xclient" not in c.ehlo()[1].decode().lower()
            assert c.docmd("XCLIENT", "ADDR=192.0.2.7")[0] == 550
        p = poplib.POP3("127.0.0.1", s.ports["POP3"], timeout=30)
        with pytest.raises(poplib.error_proto):
            p._shortcmd("XCLIENT ADDR=192.0.2.9")
        p.quit()
        # An ID naming another client changes nothing: failures count
        # against the connection's own address.
        for _ in range(3):
            assert imap_login(s, "alice@example.test", "wrong", "192.0.2.7") == "NO"
        assert imap_login(s, "alice@example.test", PASSWORD, "192.0.2.8") == "BYE"
    finally:
        s.stop()


def test_logins_are_cached_as_dovecot_caches_them(tmp_path):
    """A login verified lately needs no hashing (a webmail logs in on
    every page): the log says cached=yes. A wrong password is never
    served from the cache, and a reload (SIGHUP, a new users file)
    drops it, so a changed password takes effect at once."""
    import signal
    from conftest import add_user
    s = start(tmp_path, "")
    try:
        assert imap_login(s, "alice@example.test", PASSWORD) == "OK"
        assert s.wait_logged('auth ok user="alice@example.test" ip=127.0.0.1\n')
        assert imap_login(s, "alice@example.test", PASSWORD) == "OK"
        assert s.wait_logged('auth ok user="alice@example.test" ip=127.0.0.1 cached=yes')
        assert imap_login(s, "alice@example.test", "wrong") == "NO"
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30) as c:
            c.login("alice@example.test", PASSWORD)
        # The log is read by another thread: wait (bounded) for the line.
        cached = lambda: sum("cached=yes" in l for l in s.log)
        for _ in range(100):
            if cached() >= 2:
                break
            time.sleep(0.05)
        assert cached() == 2, [l for l in s.log if "auth ok" in l]
        # A new password, then SIGHUP: the old one is refused.
        (tmp_path / "users").write_text("bob@example.test\n")
        add_user(tmp_path / "pre.conf", "alice@example.test", "a new one")
        s.proc.send_signal(signal.SIGHUP)
        assert s.wait_logged("reloaded: 2 users")
        assert imap_login(s, "alice@example.test", PASSWORD) == "NO"
        assert imap_login(s, "alice@example.test", "a new one") == "OK"
    finally:
        s.stop()
