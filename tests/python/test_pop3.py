"""POP3 through real clients, for Maildir and mbox: poplib (plain,
stls(), POP3_SSL), fetchmail keep and delete, mutt over pops://, openssl
s_client -starttls pop3; what arrives is what was sent plus our trace
headers; nothing is deleted unless QUIT is reached."""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import Server, add_user, make_cert

PASSWORD = "pop pw"


@pytest.fixture(params=["maildir", "mbox"])
def pop(request, tmp_path):
    cert, key = make_cert(tmp_path)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("alice@example.test\n")
    add_user(conf, "bob@example.test", PASSWORD)
    s = Server(tmp_path, request.param, users=(tmp_path / "users").read_text(),
               extra=f"""
        tls_cert = {cert}
        tls_key = {key}
        listen_pop3 = 127.0.0.1:0
        listen_pop3s = 127.0.0.1:0
        max_message_size = 80M
    """)
    s.cert = cert
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


def send(server, *bodies):
    with smtplib.SMTP("127.0.0.1", server.port) as c:
        for b in bodies:
            c.sendmail("sender@remote.test", ["bob@example.test"], b)


def body(i):
    return (f"Subject: m{i}\r\nFrom: sender@remote.test\r\n\r\n"
            f".leading dot {i}\r\nFrom the start\r\n>From quoted\r\nend {i}\r\n").encode()


def strip_trace(lines):
    """Lines of a retrieved message without our trace headers."""
    i = 0
    while lines[i].startswith((b"Return-Path:", b"Delivered-To:", b"Authentication-Results:",
                               b"Received:", b"\t")):
        i += 1
    return lines[i:]


def login(server, port_name="POP3"):
    import poplib
    p = poplib.POP3("127.0.0.1", server.ports[port_name], timeout=30)
    p.user("bob@example.test")
    p.pass_(PASSWORD)
    return p


def test_retr_is_byte_identical_and_sizes_match(pop):
    send(pop, body(0), body(1))
    p = login(pop)
    count, total = p.stat()
    assert count == 2
    sizes = [int(l.split()[1]) for l in p.list()[1]]
    assert sum(sizes) == total
    for n in (1, 2):
        resp, lines, octets = p.retr(n)
        assert resp == f"+OK {sizes[n - 1]} octets".encode()
        # The size LIST gave is what arrives: CRLF line ends, unstuffed.
        assert sum(len(l) + 2 for l in lines) == sizes[n - 1]
        sent = body(n - 1).split(b"\r\n")[:-1]
        assert strip_trace(lines) == sent
    resp, lines, _ = p.top(1, 1)
    assert strip_trace(lines) == body(0).split(b"\r\n")[:4]
    p.quit()


def test_dele_applies_only_at_quit_and_uidls_are_stable(pop):
    send(pop, body(0), body(1), body(2))
    p = login(pop)
    uidls = p.uidl()[1]
    p.dele(2)
    p.quit()
    p = login(pop)
    assert p.stat()[0] == 2
    after = p.uidl()[1]
    assert [u.split()[1] for u in after] == [uidls[0].split()[1], uidls[2].split()[1]]
    # RSET undoes DELE; a dropped connection applies nothing.
    p.dele(1)
    p.rset()
    p.dele(2)
    p.sock.shutdown(socket.SHUT_RDWR)  # the client dies before QUIT
    p.close()
    time.sleep(0.3)
    p = login(pop)
    assert [u.split()[1] for u in p.uidl()[1]] == [u.split()[1] for u in after]
    p.quit()


def test_uidls_survive_a_restart(pop, tmp_path):
    send(pop, body(0), body(1))
    p = login(pop)
    before = p.uidl()[1]
    p.quit()
    pop.stop()
    again = Server(tmp_path, pop.format, users=(tmp_path / "users").read_text(),
                   extra=f"tls_cert = {pop.cert}\ntls_key = {tmp_path / 'ec.key'}\n"
                         "listen_pop3 = 127.0.0.1:0")
    try:
        p = login(again)
        assert p.uidl()[1] == before
        p.quit()
    finally:
        again.stop()


def test_one_session_per_mailbox_and_delivery_goes_on(pop):
    send(pop, body(0))
    first = login(pop)
    import poplib
    second = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=30)
    second.user("bob@example.test")
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(PASSWORD)
    assert b"[IN-USE]" in e.value.args[0]
    second.quit()
    # Delivery into the mailbox is never blocked by the session...
    send(pop, body(1))
    # ...and shows up in the next session, not this one.
    assert first.stat()[0] == 1
    first.dele(1)
    first.quit()
    p = login(pop)
    resp, lines, _ = p.retr(1)
    assert strip_trace(lines)[0] == b"Subject: m1"
    p.quit()


def test_stls_and_pop3s(pop):
    import poplib
    ctx = ssl.create_default_context(cafile=str(pop.cert))
    send(pop, body(0))
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=30)
    assert "STLS" in p.capa()
    p.stls(context=ctx)
    assert "STLS" not in p.capa()
    p.user("bob@example.test")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", pop.ports["POP3S"], context=ctx, timeout=30)
    p.user("bob@example.test")
    p.pass_(PASSWORD)
    assert strip_trace(p.retr(1)[1])[0] == b"Subject: m0"
    p.quit()
    assert pop.logged("version=TLSv1.3")


def test_auth_plain_and_errors(pop):
    import base64
    sock = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), timeout=30)
    f = sock.makefile("rb")

    def cmd(line):
        sock.sendall(line + b"\r\n")
        return f.readline()

    assert f.readline().startswith(b"+OK")
    assert cmd(b"STAT").startswith(b"-ERR")
    assert cmd(b"X" * 5000).startswith(b"-ERR line too long")
    assert cmd(b"AUTH PLAIN").startswith(b"+ ")
    bad = base64.b64encode(b"\0bob@example.test\0wrong")
    start = time.monotonic()
    assert cmd(bad).startswith(b"-ERR [AUTH]")
    assert time.monotonic() - start >= 1.9
    good = base64.b64encode(b"\0bob@example.test\0" + PASSWORD.encode())
    assert cmd(b"AUTH PLAIN " + good).startswith(b"+OK 0 messages")
    assert cmd(b"RETR 1").startswith(b"-ERR no such message")
    assert cmd(b"DELE x").startswith(b"-ERR")
    assert cmd(b"USER x").startswith(b"-ERR")
    assert cmd(b"QUIT").startswith(b"+OK")
    assert pop.logged("auth failed user=\"bob@example.test\" ip=127.0.0.1")


def test_maildir_read_messages_move_to_cur_seen(pop):
    if pop.format != "maildir":
        pytest.skip("Maildir only")
    send(pop, body(0), body(1))
    p = login(pop)
    p.retr(1)
    p.quit()
    cur = os.listdir(pop.mailbox_path("bob") / "cur")
    new = os.listdir(pop.mailbox_path("bob") / "new")
    assert len(cur) == 1 and cur[0].endswith(":2,S") and len(new) == 1


def test_openssl_s_client_starttls_pop3(pop):
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "pop3", "-connect",
         f"127.0.0.1:{pop.ports['POP3']}", "-CAfile", str(pop.cert),
         "-verify_return_error", "-ign_eof"],
        input=f"USER bob@example.test\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n",
        capture_output=True, text=True, timeout=60)
    assert "Verify return code: 0 (ok)" in out.stdout, out.stdout + out.stderr
    assert "+OK 0 0" in out.stdout, out.stdout


def fetchmailrc(tmp_path, pop, keep, ssl_mode):
    out = tmp_path / f"fetched-{int(keep)}"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f"#!/bin/sh\ncat > \"$(mktemp {out}/msg.XXXXXX)\"\n")
    mda.chmod(0o755)
    port = pop.ports["POP3S" if ssl_mode == "ssl" else "POP3"]
    rc = tmp_path / f"fetchmailrc-{int(keep)}"
    rc.write_text(
        f"set no bouncemail\n"
        f"poll 127.0.0.1 service {port} protocol POP3 auth password\n"
        f"  user \"bob@example.test\" there with password \"{PASSWORD}\" is root here\n"
        f"  {ssl_mode} sslcertck sslcertfile \"{pop.cert}\" sslcommonname localhost\n"
        f"  {'keep' if keep else 'nokeep'} mda \"{mda}\"\n")
    rc.chmod(0o600)
    return rc, out


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail missing")
@pytest.mark.parametrize("keep,ssl_mode", [(True, "sslproto tls1.2+ "), (False, "ssl")])
def test_fetchmail_keep_and_delete(pop, tmp_path, keep, ssl_mode):
    send(pop, body(0), body(1), body(2))
    mode = "ssl" if ssl_mode == "ssl" else "stls"
    rc, out = fetchmailrc(tmp_path, pop, keep, ssl_mode)
    env = {**os.environ, "HOME": str(tmp_path)}
    run = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog",
                          "-v", "-i", str(tmp_path / f"ids-{mode}")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    got = sorted(p.read_bytes() for p in out.iterdir())
    assert len(got) == 3, run.stdout + run.stderr
    for data in got:
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        assert b"Subject: m" in data and b".leading dot" in data
        assert any(l == b"From the start" for l in lines), data
    p = login(pop)
    assert p.stat()[0] == (3 if keep else 0)
    p.quit()


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt missing")
def test_mutt_reads_over_pops(pop, tmp_path):
    send(pop, body(0), body(1))
    muttrc = tmp_path / "muttrc"
    copy = tmp_path / "copy.mbox"
    muttrc.write_text(
        f"set folder={tmp_path}\nset mbox_type=mbox\nset confirmcreate=no\n"
        "set confirmappend=no\nset delete=no\nset move=no\nset quit=yes\n"
        f"set pop_pass=\"{PASSWORD}\"\nset certificate_file={pop.cert}\n"
        "set ssl_verify_host=no\n")
    keys = f"<tag-pattern>~A<enter><tag-prefix><copy-message>{copy}<enter><quit>"
    url = f"pops://bob%40example.test@127.0.0.1:{pop.ports['POP3S']}/"
    mutt = f"mutt -n -F {muttrc} -f '{url}' -e 'push \"{keys}\"'"
    out = subprocess.run(["script", "-qec", mutt, "/dev/null"], capture_output=True,
                         timeout=120, env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                                           "HOME": str(tmp_path)})
    # mutt writes this mbox with Content-Length and leaves body `From `
    # lines unquoted, so split on real From_ lines (sender and date).
    text = copy.read_text() if copy.exists() else ""
    parts = re.split(r"(?m)^From \S+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", text)[1:]
    screen = out.stdout.decode(errors="replace")[-2000:]
    assert sorted(re.search(r"(?m)^Subject: (\S+)", p).group(1) for p in parts) == ["m0", "m1"], screen
    for p in parts:
        assert "\n\n.leading dot" in p and "\nFrom the start\n>From quoted\nend" in p, p


def server_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_50_mib_message_streams_with_flat_rss(pop):
    big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * (50 * 1024 * 1024 // 78)
    send(pop, big)
    del big
    time.sleep(0.5)
    base = server_rss_kib(pop.proc.pid)
    sock = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(f"USER bob@example.test\r\nPASS {PASSWORD}\r\n".encode())
    f.readline()
    assert f.readline().startswith(b"+OK 1 messages")
    sock.sendall(b"RETR 1\r\n")
    size = int(f.readline().split()[1])
    received, peak = 0, base
    while True:
        line = f.readline()
        if line == b".\r\n":
            break
        received += len(line)
        if received % (4 * 1024 * 1024) < 80:
            peak = max(peak, server_rss_kib(pop.proc.pid))
            time.sleep(0.01)  # a slow reader
    assert received == size
    sock.sendall(b"QUIT\r\n")
    sock.close()
    # Flat: the server holds buffers, never the message.
    assert peak - base < 8 * 1024, (base, peak)


def test_pipelined_commands_behind_a_long_retr(pop):
    """PIPELINING: commands sent while a message streams wait their turn,
    and are answered without any new input arriving."""
    big = b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 40000
    send(pop, big, body(1))
    sock = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), timeout=30)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(f"USER bob@example.test\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())
    f.readline()
    f.readline()
    assert f.readline().startswith(b"+OK")
    time.sleep(0.2)  # the server is mid-message, waiting for us to read
    sock.sendall(b"RETR 2\r\nNOOP\r\n")
    lines, in_body = 0, False
    while (line := f.readline()) != b".\r\n":
        lines += in_body
        in_body = in_body or line == b"\r\n"
    assert lines == 40000
    assert f.readline().startswith(b"+OK")
    while f.readline() != b".\r\n":
        pass
    assert f.readline() == b"+OK\r\n"
    sock.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    sock.close()
