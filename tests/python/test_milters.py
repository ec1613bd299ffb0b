"""Milters (issue 19): postling speaks the Sendmail milter protocol
(version 6) to Debian's rspamd in milter mode, to spamass-milter with
spamd, and to a milter built on libmilter itself (python3-milter) that
answers with every action: reject and tempfail with its own reply,
discard, quarantine, header additions, insertions and changes, a new
body; and the macros it was sent. Also a milter that is down, with
milter_default_action tempfail and accept."""

import os
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Server, users_with_password

SYSTEM_PYTHON = "/usr/bin/python3"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
PASSWORD = "milter-secret-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def message(subject, body="Hello Bob, the meeting is at noon.", to="bob@example.test"):
    return (f"From: alice@remote.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
            f"\r\n{body}\r\n")


def send(server, subject, body="Hello Bob, the meeting is at noon."):
    """None if accepted, else (code, text)."""
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=120) as c:
            c.sendmail("alice@remote.test", ["bob@example.test"], message(subject, body))
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    return None


def stored(server, subject, folder=None):
    """bob's stored message with this subject (INBOX, or a folder)."""
    root = server.dir / "data/mail/example.test/bob"
    place = root if folder is None else root / f".{folder}"
    for d in ("new", "cur"):
        for p in sorted((place / d).glob("*")) if (place / d).exists() else []:
            raw = p.read_bytes()
            if f"<{subject.replace(' ', '.')}@remote.test>".encode() in raw:
                return raw.decode()
    return None


def got_macros(raw):
    """The macros the actions milter reported, as a dict."""
    line = raw.split("X-Macros: ", 1)[1].split("\n", 1)[0]
    return dict(item.split("=", 1) for item in line.split(";") if item)


def milter_server(tmp_path, milters, extra=""):
    srv = tmp_path / f"srv{len(list(tmp_path.glob('srv*')))}"
    srv.mkdir()
    return Server(srv, extra=f"milters = {milters}\nmilter_timeout = 60s\n"
                             f"listen_submission = 127.0.0.1:0\ninbound_checks = none\n{extra}",
                  users=users_with_password(srv, PASSWORD))


RSPAMD_CONF = """
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    dns {{ nameserver = ["127.0.0.1:1"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "console"; level = "error"; }}
worker "rspamd_proxy" {{
    bind_socket = "127.0.0.1:{port}";
    milter = yes;
    timeout = 60s;
    count = 1;
    upstream "local" {{ default = yes; self_scan = yes; }}
}}
"""


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    if not shutil.which("rspamd"):
        pytest.skip("rspamd is not installed")
    tmp = tmp_path_factory.mktemp("rspamd")
    for d in ("local/local.d", "db", "run", "log"):
        (tmp / d).mkdir(parents=True)
    (tmp / "local/local.d/milter_headers.conf").write_text(
        'use = ["x-spamd-result", "x-spam-status", "x-rspamd-queue-id"];\n'
        "skip_local = false;\nskip_authenticated = false;\n")
    port = free_port()
    (tmp / "rspamd.conf").write_text(RSPAMD_CONF.format(port=port))
    proc = subprocess.Popen(
        ["rspamd", "-f", "-i", "-c", str(tmp / "rspamd.conf"), "--var=CONFDIR=/etc/rspamd",
         f"--var=LOCAL_CONFDIR={tmp / 'local'}", f"--var=DBDIR={tmp / 'db'}",
         f"--var=RUNDIR={tmp / 'run'}", f"--var=LOGDIR={tmp / 'log'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, 120)
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def spamassassin(tmp_path_factory):
    if not shutil.which("spamass-milter") or not shutil.which("spamd"):
        pytest.skip("spamass-milter or spamd is not installed")
    spamd_port, milter_port = free_port(), free_port()
    spamd = subprocess.Popen(
        ["spamd", f"--listen=127.0.0.1:{spamd_port}", "--allowed-ips=127.0.0.1", "-x",
         "--max-children=1", "--syslog=stderr", "-u", "nobody"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    milter = subprocess.Popen(
        ["spamass-milter", "-p", f"inet:{milter_port}@127.0.0.1", "-r", "5",
         "--", "-d", "127.0.0.1", "-p", str(spamd_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(spamd_port, spamd, 120)
        wait_port(milter_port, milter, 30)
        yield milter_port
    finally:
        stop(milter, spamd)


# A milter on libmilter (python3-milter): what it does is chosen by the
# Subject; it reports the macros it was given in X-Macros.
ACTIONS_MILTER = r'''
import sys, Milter

class Actions(Milter.Base):
    def __init__(self):
        self.subject, self.seen = "", {}
    def note(self, *names):
        for n in names:
            v = self.getsymval(n)
            if v is not None:
                self.seen[n] = v
    def connect(self, name, family, hostaddr):
        self.note("{client_addr}", "{client_name}", "j")
        return Milter.CONTINUE
    def envfrom(self, f, *rest):
        self.note("i", "{mail_addr}", "{auth_authen}")
        return Milter.CONTINUE
    def envrcpt(self, to, *rest):
        self.note("{rcpt_addr}")
        return Milter.CONTINUE
    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE
    def eom(self):
        s = self.subject
        if s == "tempfail":
            self.setreply("451", "4.7.0", "Try later please")
            return Milter.TEMPFAIL
        if s == "reject":
            self.setreply("550", "5.7.1", "Not wanted here")
            return Milter.REJECT
        if s == "discard":
            return Milter.DISCARD
        if s == "quarantine":
            self.quarantine("looks bad")
            return Milter.ACCEPT
        if s == "edit":
            self.addheader("X-Added", "yes")
            self.addheader("X-First", "top", 0)
            self.chgheader("Subject", 1, "edited by milter")
            self.replacebody(b"A new body.\r\nSecond line.\r\n")
            return Milter.ACCEPT
        self.addheader("X-Macros", ";".join(f"{k}={v}" for k, v in sorted(self.seen.items())))
        return Milter.CONTINUE

Milter.factory = Actions
Milter.set_flags(Milter.ADDHDRS + Milter.CHGHDRS + Milter.CHGBODY + Milter.QUARANTINE)
Milter.runmilter("actions", "inet:%s@127.0.0.1" % sys.argv[1], 240)
'''


@pytest.fixture(scope="module")
def actions_milter(tmp_path_factory):
    if subprocess.run([SYSTEM_PYTHON, "-c", "import Milter"], capture_output=True).returncode:
        pytest.skip("python3-milter is not installed")
    tmp = tmp_path_factory.mktemp("pymilter")
    (tmp / "actions.py").write_text(ACTIONS_MILTER)
    port = free_port()
    proc = subprocess.Popen([SYSTEM_PYTHON, str(tmp / "actions.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, 30)
        yield port
    finally:
        stop(proc)


def test_rspamd_rejects_gtube_and_adds_its_headers(tmp_path, rspamd):
    s = milter_server(tmp_path, f"inet:127.0.0.1:{rspamd}")
    try:
        assert send(s, "gtube", GTUBE) == (554, "5.7.1 Gtube pattern")
        assert s.wait_logged('result=rejected (554 "5.7.1 Gtube pattern")')
        assert send(s, "meeting") is None
        raw = stored(s, "meeting")
        assert raw is not None
        # Its queue id is ours (macro i), its verdict in its headers.
        queue_id = raw.split(" id ", 1)[1].split()[0]
        assert f"X-Rspamd-Queue-Id: {queue_id}\n" in raw, raw
        assert "X-Spamd-Result: default: False" in raw and "X-Spam-Status: No" in raw
        assert raw.startswith("Return-Path: <alice@remote.test>\n")
        assert stored(s, "gtube") is None
    finally:
        s.stop()


def test_spamassassin_rejects_gtube_and_tags_the_rest(tmp_path, spamassassin):
    s = milter_server(tmp_path, f"inet:127.0.0.1:{spamassassin}")
    try:
        code, text = send(s, "gtube", GTUBE)
        assert code == 550 and text.startswith("5.7.1"), text
        assert send(s, "meeting") is None
        raw = stored(s, "meeting")
        assert "X-Spam-Status: No, score=" in raw and "X-Spam-Checker-Version: SpamAssassin" in raw, raw
    finally:
        s.stop()


def test_every_action_and_the_macros(tmp_path, actions_milter):
    s = milter_server(tmp_path, f"inet:127.0.0.1:{actions_milter}")
    try:
        assert send(s, "tempfail") == (451, "4.7.0 Try later please")
        assert send(s, "reject") == (550, "5.7.1 Not wanted here")
        # Discard: accepted, not stored, said in the log.
        assert send(s, "discard") is None
        assert s.wait_logged("result=discarded (by milter inet:127.0.0.1:")
        assert stored(s, "discard") is None
        # Quarantine: into Junk, saying so.
        assert send(s, "quarantine") is None
        junk = stored(s, "quarantine", folder="Junk")
        assert junk is not None and stored(s, "quarantine") is None
        assert junk.startswith("X-Spam: yes\nX-Spam-Status: Yes, reason=\"milter quarantine: inet:127.0.0.1:")
        assert "looks bad" in junk
        # Header additions, an insertion at the top, a change, a new body.
        assert send(s, "edit", "The old body.") is None
        edited = stored(s, "edit")
        head, body = edited.split("\n\n", 1)
        assert head.startswith("X-First: top\nReturn-Path: <alice@remote.test>\n"), head
        assert "\nSubject: edited by milter\n" in head and "\nSubject: edit\n" not in head
        assert head.endswith("\nX-Added: yes")
        assert body == "A new body.\nSecond line.\n"
        # The macros, from port 25 and from a logged-in user.
        assert send(s, "plain") is None
        macros = got_macros(stored(s, "plain"))
        assert macros["{client_addr}"] == "127.0.0.1" and macros["{mail_addr}"] == "alice@remote.test"
        assert macros["{rcpt_addr}"] == "bob@example.test" and macros["j"] == "mx.example.test"
        queue_id = stored(s, "plain").split(" id ", 1)[1].split()[0]
        assert macros["i"] == queue_id
        assert macros.get("{auth_authen}", "") == "", "nobody logged in on port 25"
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=60) as c:
            c.login("alice@example.test", PASSWORD)
            c.sendmail("alice@example.test", ["bob@example.test"],
                       message("submitted").replace("alice@remote.test", "alice@example.test"))
        macros = got_macros(stored(s, "submitted"))
        assert macros["{auth_authen}"] == "alice@example.test", macros
    finally:
        s.stop()


def test_a_milter_that_is_down(tmp_path):
    port = free_port()  # nothing listens there
    s = milter_server(tmp_path, f"inet:127.0.0.1:{port}")
    try:
        assert send(s, "down") == (451, "4.7.1 Service unavailable - try again later")
        assert s.wait_logged(f"milter=inet:127.0.0.1:{port}:unavailable")
    finally:
        s.stop()
    s = milter_server(tmp_path, f"inet:127.0.0.1:{port}", "milter_default_action = accept")
    try:
        assert send(s, "down but accepted") is None
        assert stored(s, "down but accepted") is not None
    finally:
        s.stop()
