"""`postling doctor` against a private Unbound: a zone that is right in
every way, then one that is wrong in each way, so every line is seen
both ok and not (warn or fail, with the record to publish), and the exit
status follows. The server runs on 127.0.0.2 (our public address here);
port 25 is tried against our own listener; the open-relay self-test
talks to the real server."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import BINARY, Server, add_user
from peers import Unbound


def txt(value: str) -> str:
    escaped = value.replace('"', '\\"')
    return " ".join(f'"{escaped[i:i + 250]}"' for i in range(0, len(escaped), 250))


def dkim_key(tmp, name):
    """A key made by postling dkim keygen: (file, TXT record value)."""
    out = subprocess.run([BINARY, "dkim", "keygen", "example.test", name, "--ed25519",
                          "-o", str(tmp / f"{name}.pem")], capture_output=True, text=True, check=True)
    inside = out.stdout.split("(", 1)[1].split(")", 1)[0]
    return tmp / f"{name}.pem", "".join(part.strip().strip('"') for part in inside.split('" "'))


def site_cert(tmp, name, names, days=90):
    key, cert = tmp / f"{name}.key", tmp / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", str(days), "-subj", "/CN=x",
                    "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def zone(records):
    lines = ['    local-zone: "example.test." static', '    local-zone: "bl.test." static',
             '    local-zone: "trap.test." static']
    for r in records:
        lines.append(f"    local-data: '{r}'")
    return "\n".join(lines)


def doctor(conf, *args):
    out = subprocess.run([BINARY, "doctor", "-c", str(conf), *args],
                         capture_output=True, text=True, timeout=300)
    lines = {}
    for line in out.stdout.splitlines():
        status, rest = line[:4].strip(), line[5:]
        what, _, detail = rest.partition(": ")
        lines[what] = (status, detail)
    return out.returncode, lines, out.stdout + out.stderr


def assert_lines(lines, wanted, out):
    """Each line named in `wanted` has its status and says its words."""
    for what, (status, words) in wanted.items():
        got = lines.get(what)
        assert got is not None, f"{what} missing\n{out}"
        assert got[0] == status and words in got[1], f"{what}: {got}\n{out}"


@pytest.fixture
def setup(tmp_path):
    good_key, good_txt = dkim_key(tmp_path, "sel")
    _, other_txt = dkim_key(tmp_path, "other")
    cert, key = site_cert(tmp_path, "good", ["mx.example.test", "mta-sts.example.test",
                                              "autoconfig.example.test"])
    bad_cert, bad_key = site_cert(tmp_path, "bad", ["elsewhere.test"], days=5)
    conf = tmp_path / "pre.conf"
    conf.write_text("domains = example.test\nusers_file = users\n")
    (tmp_path / "users").write_text("")
    add_user(conf, "alice@example.test", "alice pw")
    os.chmod(tmp_path / "users", 0o600)
    srv = Server(tmp_path, "maildir", users=(tmp_path / "users").read_text(), aliases="", extra=f"""
        hostname = mx.example.test
        listen_smtp = 127.0.0.2:0
        tls_cert = {cert}
        tls_key = {key}
        listen_submissions = 127.0.0.1:0
        listen_https = 127.0.0.1:0
        dkim_keys = example.test:sel:{good_key}
        public_ips = 127.0.0.2
        dnsbl = bl.test trap.test
    """)
    os.chmod(tmp_path / "users", 0o600)
    smtp_port = srv.ports["SMTP"]
    yield srv, smtp_port, good_txt, other_txt, (bad_cert, bad_key)
    srv.stop()


def with_dns(srv, tmp, records, name, replace=()):
    dns = Unbound(tmp / name, zone(records)) if (tmp / name).mkdir() is None else None
    text = srv.conf.read_text().replace("dns_servers = 127.0.0.1:1", f"dns_servers = 127.0.0.1:{dns.port}")
    for old, new in replace:
        text = text.replace(old, new)
    conf = tmp / name / "postling.conf"
    conf.write_text(text)
    return dns, conf


def test_a_right_setup_is_all_ok(setup, tmp_path):
    srv, smtp_port, good_txt, _, _ = setup
    records = [
        "example.test. MX 10 mx.example.test.",
        "mx.example.test. A 127.0.0.2",
        "2.0.0.127.in-addr.arpa. PTR mx.example.test.",
        f"example.test. TXT {txt('v=spf1 ip4:127.0.0.2 -all')}",
        f"sel._domainkey.example.test. TXT {txt(good_txt)}",
        f"_dmarc.example.test. TXT {txt('v=DMARC1; p=reject')}",
        f"_mta-sts.example.test. TXT {txt('v=STSv1; id=20261207')}",
        f"_smtp._tls.example.test. TXT {txt('v=TLSRPTv1; rua=mailto:tls@example.test')}",
        "_submissions._tcp.example.test. SRV 0 1 465 mx.example.test.",
        "autoconfig.example.test. A 127.0.0.2",
        "autodiscover.example.test. A 127.0.0.2",
    ]
    dns, conf = with_dns(srv, tmp_path, records, "right",
                         replace=[("listen_smtp = 127.0.0.2:0", f"listen_smtp = 127.0.0.2:{smtp_port}")])
    # data_dir is relative to the config: the same folder as the server's.
    conf.write_text(conf.read_text().replace("data_dir = data", f"data_dir = {srv.dir / 'data'}")
                    .replace("users_file = users", f"users_file = {srv.dir / 'users'}"))
    try:
        code, lines, out = doctor(conf, "--port25-to", f"example.test:{smtp_port}")
    finally:
        dns.stop()
    expected = ["A mx.example.test", "PTR 127.0.0.2", "MX example.test", "SPF example.test",
                "DKIM sel._domainkey.example.test", "DMARC example.test", "MTA-STS example.test",
                "TLS-RPT example.test", "SRV _submissions._tcp.example.test", "autoconfig example.test",
                "autodiscover example.test", "blocklist bl.test 127.0.0.2", "blocklist trap.test 127.0.0.2",
                "certificate for mx.example.test", "certificate for mta-sts.example.test",
                "certificate for autoconfig.example.test", "certificate expiry",
                f"outbound port {smtp_port} to example.test", "open relay", "queue", "free space",
                "permissions users_file", "permissions tls_key",
                "permissions DKIM key sel._domainkey.example.test", "permissions data_dir"]
    for what in expected:
        assert lines.get(what, ("missing",))[0] == "ok", f"{what}: {lines.get(what)}\n{out}"
    assert code == 0, out
    if os.environ.get("DOCTOR_SAMPLE"):
        open(os.environ["DOCTOR_SAMPLE"], "w").write(out)


def test_a_wrong_setup_says_what_to_fix(setup, tmp_path):
    srv, smtp_port, _, other_txt, (bad_cert, bad_key) = setup
    records = [
        "example.test. MX 10 other.example.test.",
        "mx.example.test. A 127.0.0.9",
        "2.0.0.127.in-addr.arpa. PTR nowhere.example.test.",
        f"example.test. TXT {txt('v=spf1 ip4:127.0.0.9 -all')}",
        f"sel._domainkey.example.test. TXT {txt(other_txt)}",
        "2.0.0.127.bl.test. A 127.0.0.2",
        "2.0.0.127.trap.test. A 127.255.255.254",
    ]
    shutil.copy(srv.dir / "users", tmp_path / "users-open")
    os.chmod(tmp_path / "users-open", 0o644)
    # Secrets others may read, a data_dir anyone may write, and a
    # message two days old in its queue.
    os.chmod(bad_key, 0o644)
    shutil.copy(srv.dir / "sel.pem", tmp_path / "sel-open.pem")
    os.chmod(tmp_path / "sel-open.pem", 0o644)
    data = tmp_path / "wrongdata"
    (data / "queue/new").mkdir(parents=True)
    os.chmod(data, 0o777)
    queued = data / "queue/new/1A2B3C"
    queued.write_text("from <alice@example.test>\nto <bob@far.test>\n\nSubject: x\n\nold\n")
    two_days = time.time() - 2 * 86_400
    os.utime(queued, (two_days, two_days))
    # The server trusts loopback here; the doctor's copy of the config
    # does not, so its self-test sees the relay a stranger would.
    dns, conf = with_dns(srv, tmp_path, records, "wrong", replace=[
        ("data_dir = data", f"data_dir = {data}"),
        (f"example.test:sel:{srv.dir / 'sel.pem'}", f"example.test:sel:{tmp_path / 'sel-open.pem'}"),
        ("users_file = users", f"users_file = {tmp_path / 'users-open'}"),
        (f"tls_cert = {srv.dir / 'good.pem'}", f"tls_cert = {bad_cert}"),
        (f"tls_key = {srv.dir / 'good.key'}", f"tls_key = {bad_key}"),
    ])
    conf.write_text(conf.read_text() + "min_free_space = 100000G\n")
    relay_dir = tmp_path / "relay"
    relay_dir.mkdir()
    relay = Server(relay_dir, extra="""
        listen_smtp = 127.0.0.3:0
        trusted_networks = 127.0.0.0/8
    """)
    conf.write_text(conf.read_text().replace(
        f"listen_smtp = 127.0.0.2:0", f"listen_smtp = 127.0.0.3:{relay.ports['SMTP']}"))
    try:
        code, lines, out = doctor(conf, "--port25-to", "example.test:1")
    finally:
        dns.stop()
        relay.stop()
    assert code == 1, out
    if os.environ.get("DOCTOR_SAMPLE"):
        open(os.environ["DOCTOR_SAMPLE"] + ".wrong", "w").write(out)
    wanted = {
        "A mx.example.test": ("fail", "publish: mx.example.test. A 127.0.0.2"),
        "PTR 127.0.0.2": ("fail", "2.0.0.127.in-addr.arpa. PTR mx.example.test."),
        "MX example.test": ("fail", "publish: example.test. MX 10 mx.example.test."),
        "SPF example.test": ("fail", "add ip4:127.0.0.2"),
        "DKIM sel._domainkey.example.test": ("fail", "publish: sel._domainkey.example.test. TXT \"v=DKIM1"),
        "DMARC example.test": ("fail", "publish: _dmarc.example.test. TXT \"v=DMARC1;"),
        "MTA-STS example.test": ("warn", "publish: _mta-sts.example.test. TXT \"v=STSv1; id="),
        "TLS-RPT example.test": ("warn", "publish: _smtp._tls.example.test. TXT \"v=TLSRPTv1;"),
        "SRV _submissions._tcp.example.test": ("warn", "SRV 0 1 465 mx.example.test."),
        "autoconfig example.test": ("warn", "publish: autoconfig.example.test. CNAME mx.example.test."),
        "autodiscover example.test": ("warn", "CNAME mx.example.test."),
        "blocklist bl.test 127.0.0.2": ("fail", "listed"),
        "blocklist trap.test 127.0.0.2": ("warn", "refused to answer"),
        "certificate for mx.example.test": ("fail", "not covered"),
        "certificate for mta-sts.example.test": ("fail", "not covered"),
        "outbound port 1 to example.test": ("fail", "blocked"),
        "open relay": ("fail", "relay-test.invalid got 250"),
        "free space": ("fail", "min_free_space"),
        "permissions users_file": ("fail", "chmod 600"),
        "permissions tls_key": ("fail", "chmod 600"),
        "permissions DKIM key sel._domainkey.example.test": ("fail", "chmod 600"),
        "permissions data_dir": ("fail", "world-writable"),
        "certificate expiry": ("warn", "renew it"),
        "queue": ("warn", "1 messages, the oldest 48 hours old"),
    }
    assert_lines(lines, wanted, out)


def expired_cert(tmp, names):
    """A certificate whose time ended in 2020 (openssl req cannot make one)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2020, 2, 1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "expired.pem", tmp / "expired.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    return cert_file, key_file


def test_the_softer_cases_and_a_hostile_record(setup, tmp_path):
    """What the wrong setup does not show: a PTR confirmed but not our
    hostname and an SPF record ending in ?all (warn), an expired
    certificate (fail), the relay test run from a trusted address (warn,
    not tested), and a record carrying control characters, which is
    shown escaped, never sent to the terminal as it is."""
    srv, smtp_port, good_txt, _, _ = setup
    cert, key = expired_cert(tmp_path, ["mx.example.test", "mta-sts.example.test",
                                        "autoconfig.example.test"])
    records = [
        "example.test. MX 10 mx.example.test.",
        "mx.example.test. A 127.0.0.2",
        "2.0.0.127.in-addr.arpa. PTR mail.example.test.",
        "mail.example.test. A 127.0.0.2",
        f"example.test. TXT {txt('v=spf1 ip4:127.0.0.2 ?all')}",
        f"sel._domainkey.example.test. TXT {txt(good_txt)}",
        # ESC [ 2 J (clear the screen) and a line break inside the record.
        '_dmarc.example.test. TXT "v=DMARC1; p=\\027[2J\\010ok   forged"',
    ]
    dns, conf = with_dns(srv, tmp_path, records, "soft", replace=[
        ("listen_smtp = 127.0.0.2:0", f"listen_smtp = 127.0.0.2:{smtp_port}"),
        ("trusted_networks = \n", "trusted_networks = 127.0.0.0/8\n"),
        (f"tls_cert = {srv.dir / 'good.pem'}", f"tls_cert = {cert}"),
        (f"tls_key = {srv.dir / 'good.key'}", f"tls_key = {key}"),
    ])
    conf.write_text(conf.read_text().replace("data_dir = data", f"data_dir = {srv.dir / 'data'}")
                    .replace("users_file = users", f"users_file = {srv.dir / 'users'}"))
    assert "trusted_networks = 127.0.0.0/8" in conf.read_text()
    try:
        code, lines, out = doctor(conf)
    finally:
        dns.stop()
    assert code == 1, out
    wanted = {
        "PTR 127.0.0.2": ("warn", "mail.example.test is forward-confirmed but is not mx.example.test"),
        "SPF example.test": ("warn", "should end in -all or ~all"),
        "certificate expiry": ("fail", "expired"),
        "open relay": ("warn", "not tested"),
        "DMARC example.test": ("fail", "\\u{1b}[2J"),
        "certificate for mx.example.test": ("ok", "covered"),
    }
    assert_lines(lines, wanted, out)
    assert "\x1b" not in out, repr(out)
    assert not any(line.startswith("ok   forged") for line in out.splitlines()), out
