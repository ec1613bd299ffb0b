"""SPF, DKIM, DMARC, ARC and iprev on mail from strangers, checked
against independent implementations: a private Unbound serves the test
zones; pyspf (python3-spf) computes the SPF result postling must match;
dkimpy (python3-dkim) signs and seals; python3-authres parses the
Authentication-Results read back over IMAP. Clients connect from several
loopback addresses (127.0.0.x), so SPF and iprev see different clients.
"""

import imaplib
import json
import re
import smtplib
import subprocess
from pathlib import Path

import pytest

from conftest import Server, users_with_password
from test_dns import UNBOUND, Unbound

SYSTEM_PYTHON = "/usr/bin/python3"
PSL = Path("/usr/share/publicsuffix/public_suffix_list.dat")

pytestmark = pytest.mark.skipif(
    not Path(UNBOUND).exists() or not PSL.exists()
    or subprocess.run([SYSTEM_PYTHON, "-c", "import spf, dkim, authres, nacl"],
                      capture_output=True).returncode != 0,
    reason="unbound, publicsuffix, python3-spf, python3-dkim, python3-authres or python3-nacl missing")

# The SPF zone: name -> TXT record. Addresses are loopback ones: the
# clients connect from 127.0.0.2 to 127.0.0.9.
SPF_RECORDS = {
    "ip4.spf.test": "v=spf1 ip4:127.0.0.2 -all",
    "cidr.spf.test": "v=spf1 ip4:127.0.0.0/29 -all",
    "soft.spf.test": "v=spf1 ip4:127.0.0.9 ~all",
    "neutral.spf.test": "v=spf1 ?all",
    "plus.spf.test": "v=spf1 +all",
    "a.spf.test": "v=spf1 a -all",
    "a-other.spf.test": "v=spf1 a:host3.spf.test -all",
    "a-cidr.spf.test": "v=spf1 a:host3.spf.test/30 -all",
    "mx.spf.test": "v=spf1 mx -all",
    "mx-other.spf.test": "v=spf1 mx:a.spf.test -all",
    "ptr.spf.test": "v=spf1 ptr -all",
    "ptr-other.spf.test": "v=spf1 ptr:spf.test -all",
    "include.spf.test": "v=spf1 include:ip4.spf.test -all",
    "include-none.spf.test": "v=spf1 include:nothing.spf.test -all",
    "include-soft.spf.test": "v=spf1 include:soft.spf.test ?all",
    "exists.spf.test": "v=spf1 exists:%{i}.ok.spf.test -all",
    "exists-ir.spf.test": "v=spf1 exists:%{ir}.rev.spf.test -all",
    "macro-l.spf.test": "v=spf1 exists:%{l}.users.spf.test -all",
    "macro-d2.spf.test": "v=spf1 exists:%{d2}.dom.spf.test ~all",
    "macro-lminus.spf.test": "v=spf1 exists:%{l1r-}.parts.spf.test -all",
    "macro-h.spf.test": "v=spf1 exists:%{h}.helo.spf.test -all",
    "macro-v.spf.test": "v=spf1 exists:%{v}.ver.spf.test -all",
    "macro-p.spf.test": "v=spf1 exists:%{p}.valid.spf.test -all",
    "redirect.spf.test": "v=spf1 redirect=ip4.spf.test",
    "redirect-none.spf.test": "v=spf1 redirect=nothing.spf.test",
    "exp.spf.test": "v=spf1 -all exp=why.spf.test",
    "two.spf.test": ["v=spf1 -all", "v=spf1 +all"],
    "syntax.spf.test": "v=spf1 ip4:300.1.1.1 -all",
    "unknown-mod.spf.test": "v=spf1 foo=bar ip4:127.0.0.2 -all",
    "bad-mech.spf.test": "v=spf1 frobnicate -all",
    "ip6.spf.test": "v=spf1 ip6:::1 -all",
    "ip6-v4.spf.test": "v=spf1 ip6:::1 ip4:127.0.0.7 -all",
    "void.spf.test": "v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test +all",
    "void-two.spf.test": "v=spf1 a:v1.spf.test a:v2.spf.test +all",
    # 11 terms that query DNS, none matching before the 11th: permerror;
    # 10 are allowed. Terms after a match are never counted.
    "limit.spf.test": "v=spf1 " + "a:host3.spf.test " * 8 + "include:ip4.spf.test "
                      "mx:a.spf.test ip4:127.0.0.9 -all",
    "limit-ok.spf.test": "v=spf1 " + "a:host3.spf.test " * 8 + "include:ip4.spf.test "
                         "ip4:127.0.0.9 -all",
    "limit-late.spf.test": "v=spf1 a:host3.spf.test/24 " + "a:host3.spf.test " * 12 + "-all",
    "mx-many.spf.test": "v=spf1 mx -all",
    "deep.spf.test": "v=spf1 include:deep2.spf.test -all",
    "deep2.spf.test": "v=spf1 include:deep3.spf.test -all",
    "deep3.spf.test": "v=spf1 ip4:127.0.0.4 -all",
    "loop.spf.test": "v=spf1 include:loop.spf.test -all",
    "case.spf.test": "V=SPF1 IP4:127.0.0.2 -ALL",
    "helo.spf.test": "v=spf1 ip4:127.0.0.6 -all",
    "notspf.spf.test": "v=spf10 +all",
}
OTHER_RECORDS = [
    'host3.spf.test. A 127.0.0.3',
    'a.spf.test. A 127.0.0.5',
    'mx.spf.test. MX 10 a.spf.test.',
    *[f'mx-many.spf.test. MX {i} m{i}.spf.test.' for i in range(11)],
    *[f'm{i}.spf.test. A 127.0.0.{20 + i}' for i in range(11)],
    'liar.spf.test. A 127.0.0.99',
    '127.0.0.8.ok.spf.test. A 127.0.0.2',
    '2.0.0.127.rev.spf.test. A 127.0.0.2',
    'alice.users.spf.test. A 127.0.0.2',
    'spf.test.dom.spf.test. A 127.0.0.2',
    'lminus.parts.spf.test. A 127.0.0.2',
    'helo.client.test.helo.spf.test. A 127.0.0.2',
    'in-addr.ver.spf.test. A 127.0.0.2',
    'host3.spf.test.valid.spf.test. A 127.0.0.2',
    'why.spf.test. TXT "%{i} is not one of the senders of %{d}"',
]
PTRS = [
    "127.0.0.3 host3.spf.test",
    "127.0.0.4 liar.spf.test",
]

# (sender, client address, HELO name): pyspf's answer is what is expected.
SPF_CASES = [
    ("u@ip4.spf.test", "127.0.0.2", "client.test"),
    ("u@ip4.spf.test", "127.0.0.3", "client.test"),
    ("u@cidr.spf.test", "127.0.0.7", "client.test"),
    ("u@cidr.spf.test", "127.0.0.9", "client.test"),
    ("u@soft.spf.test", "127.0.0.2", "client.test"),
    ("u@neutral.spf.test", "127.0.0.2", "client.test"),
    ("u@plus.spf.test", "127.0.0.2", "client.test"),
    ("u@a.spf.test", "127.0.0.5", "client.test"),
    ("u@a.spf.test", "127.0.0.2", "client.test"),
    ("u@a-other.spf.test", "127.0.0.3", "client.test"),
    ("u@a-cidr.spf.test", "127.0.0.2", "client.test"),
    ("u@a-cidr.spf.test", "127.0.0.5", "client.test"),
    ("u@mx.spf.test", "127.0.0.5", "client.test"),
    ("u@mx.spf.test", "127.0.0.3", "client.test"),
    ("u@mx-other.spf.test", "127.0.0.2", "client.test"),
    ("u@ptr.spf.test", "127.0.0.3", "client.test"),
    ("u@ptr-other.spf.test", "127.0.0.3", "client.test"),
    ("u@ptr-other.spf.test", "127.0.0.4", "client.test"),
    ("u@include.spf.test", "127.0.0.2", "client.test"),
    ("u@include.spf.test", "127.0.0.3", "client.test"),
    ("u@include-none.spf.test", "127.0.0.2", "client.test"),
    ("u@include-soft.spf.test", "127.0.0.2", "client.test"),
    ("u@exists.spf.test", "127.0.0.8", "client.test"),
    ("u@exists.spf.test", "127.0.0.2", "client.test"),
    ("u@exists-ir.spf.test", "127.0.0.2", "client.test"),
    ("alice@macro-l.spf.test", "127.0.0.5", "client.test"),
    ("bob@macro-l.spf.test", "127.0.0.5", "client.test"),
    ("u@macro-d2.spf.test", "127.0.0.6", "client.test"),
    ("x-lminus@macro-lminus.spf.test", "127.0.0.6", "client.test"),
    ("u@macro-h.spf.test", "127.0.0.6", "client.test"),
    ("u@macro-v.spf.test", "127.0.0.6", "client.test"),
    ("u@macro-p.spf.test", "127.0.0.3", "client.test"),
    ("u@macro-p.spf.test", "127.0.0.4", "client.test"),
    ("u@redirect.spf.test", "127.0.0.2", "client.test"),
    ("u@redirect.spf.test", "127.0.0.3", "client.test"),
    ("u@redirect-none.spf.test", "127.0.0.2", "client.test"),
    ("u@exp.spf.test", "127.0.0.2", "client.test"),
    ("u@two.spf.test", "127.0.0.2", "client.test"),
    ("u@syntax.spf.test", "127.0.0.2", "client.test"),
    ("u@unknown-mod.spf.test", "127.0.0.2", "client.test"),
    ("u@bad-mech.spf.test", "127.0.0.2", "client.test"),
    ("u@ip6.spf.test", "127.0.0.2", "client.test"),
    ("u@ip6-v4.spf.test", "127.0.0.7", "client.test"),
    ("u@void.spf.test", "127.0.0.2", "client.test"),
    ("u@void-two.spf.test", "127.0.0.2", "client.test"),
    ("u@limit.spf.test", "127.0.0.9", "client.test"),
    ("u@limit-ok.spf.test", "127.0.0.9", "client.test"),
    ("u@limit-late.spf.test", "127.0.0.9", "client.test"),
    ("u@mx-many.spf.test", "127.0.0.9", "client.test"),
    ("u@deep.spf.test", "127.0.0.4", "client.test"),
    ("u@loop.spf.test", "127.0.0.2", "client.test"),
    ("u@case.spf.test", "127.0.0.2", "client.test"),
    ("u@nothing.spf.test", "127.0.0.2", "client.test"),
    ("u@notspf.spf.test", "127.0.0.2", "client.test"),
    ("", "127.0.0.6", "helo.spf.test"),
    ("", "127.0.0.7", "helo.spf.test"),
]

PYSPF = r"""
import json, sys
import dns.resolver, spf
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
dns.resolver.default_resolver = r
out = []
for sender, ip, helo in json.load(sys.stdin):
    res, _ = spf.check2(i=ip, s=sender, h=helo, receiver="mx.example.test", timeout=20)
    out.append(res)
print(json.dumps(out))
"""


def txt(value: str) -> str:
    """A TXT record's strings, quoted for unbound (255 octets each)."""
    escaped = value.replace('"', '\\"')
    chunks = [escaped[i:i + 250] for i in range(0, len(escaped), 250)] or [""]
    return " ".join(f'"{c}"' for c in chunks)


def zone(records, extra=(), ptrs=()):
    lines = ['    local-zone: "spf.test." static', '    local-zone: "mail.test." static']
    for name, value in records.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"    local-data: '{name}. TXT {txt(v)}'")
    lines += [f"    local-data: '{r}'" for r in extra]
    lines += [f'    local-data-ptr: "{p}"' for p in ptrs]
    return "\n".join(lines)


def send(port, source, sender, rcpt, message, helo="client.test"):
    with smtplib.SMTP("127.0.0.1", port, timeout=60, local_hostname=helo,
                      source_address=(source, 0)) as c:
        # The round trips a real client makes before MAIL: iprev (asked
        # at connect, and %{p}'s name) is in by then.
        c.ehlo()
        c.noop()
        return c.sendmail(sender, [rcpt], message)


def authentication_results(raw: bytes):
    """A stored message's Authentication-Results field, unfolded."""
    m = re.search(rb"^Authentication-Results:(.*?)\n(?![ \t])", raw, re.M | re.S)
    return m.group(1).decode().replace("\n\t", " ") if m else None


def results_by_subject(server, user="bob", folder=None):
    """Each stored message's Authentication-Results, by its Subject."""
    out = {}
    for raw in server.raw_messages(user) if folder is None else folder_messages(server, user, folder):
        subject = re.search(rb"^Subject: (.*)$", raw, re.M).group(1).decode()
        out[subject] = authentication_results(raw)
    return out


def folder_messages(server, user, folder):
    root = server.mailbox_path(user) / f".{folder}"
    return [p.read_bytes() for d in ("new", "cur") for p in sorted((root / d).glob("*"))]


def spf_of(ar: str) -> str:
    return re.search(r"\bspf=(\w+)", ar).group(1)


@pytest.fixture
def dns_server(tmp_path):
    dns = Unbound(tmp_path, zone(SPF_RECORDS, OTHER_RECORDS, PTRS))
    yield dns
    dns.stop()


def test_spf_results_equal_pyspf(tmp_path, dns_server):
    """At least 40 record, address and sender cases, macros and both
    limits among them: postling's spf= equals pyspf's result."""
    expected = subprocess.run([SYSTEM_PYTHON, "-c", PYSPF, str(dns_server.port)],
                              input=json.dumps(SPF_CASES), capture_output=True,
                              text=True, timeout=300)
    assert expected.returncode == 0, expected.stderr
    expected = json.loads(expected.stdout)
    assert len(expected) >= 40
    # Every result is met somewhere in the table (the limits give permerror).
    assert {"pass", "fail", "softfail", "neutral", "none", "permerror"} <= set(expected)
    (tmp_path / "srv").mkdir()
    s = Server(tmp_path / "srv", extra=f"dns_servers = 127.0.0.1:{dns_server.port}\n")
    try:
        for n, (sender, ip, helo) in enumerate(SPF_CASES):
            send(s.port, ip, sender, "bob@example.test",
                 f"From: {sender or 'x@mail.test'}\r\nSubject: case {n}\r\n\r\nhi\r\n", helo=helo)
        by_case = results_by_subject(s)
        got = [spf_of(by_case[f"case {n}"]) for n in range(len(SPF_CASES))]
        table = [(c, e, g) for c, e, g in zip(SPF_CASES, expected, got) if e != g]
        assert not table, "cases where postling and pyspf differ: " + repr(table)
    finally:
        s.stop()


# ---------------------------------------------------------------- DKIM, DMARC, ARC

SIGN = r"""
import json, sys, dkim
out = []
for job in json.load(sys.stdin):
    msg = job["msg"].encode()
    key = open(job["key"], "rb").read()
    if job.get("arc"):
        lines = dkim.arc_sign(msg, job["selector"].encode(), job["domain"].encode(), key,
                              job["domain"].encode())
        out.append((b"".join(lines) + msg).decode())
        continue
    alg = b"ed25519-sha256" if job.get("ed") else b"rsa-sha256"
    canon = tuple(c.encode() for c in job.get("canon", ["relaxed", "relaxed"]))
    sig = dkim.sign(msg, job["selector"].encode(), job["domain"].encode(), key,
                    canonicalize=canon, signature_algorithm=alg,
                    include_headers=[b"from", b"to", b"subject", b"date"],
                    length=job.get("length", False))
    out.append((sig + msg).decode())
print(json.dumps(out))
"""


def sign(jobs):
    out = subprocess.run([SYSTEM_PYTHON, "-c", SIGN], input=json.dumps(jobs),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def new_key(tmp: Path, name: str, ed=False):
    """A dkimpy key pair (RSA 2048 or Ed25519): its file and TXT record."""
    args = ["/usr/bin/dknewkey"] + (["--ktype", "ed25519"] if ed else []) + [str(tmp / name)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return str(tmp / f"{name}.key"), (tmp / f"{name}.dns").read_text().strip()


MAIL_RECORDS = {
    "bank.test": "v=spf1 ip4:127.0.0.2 -all",
    "_dmarc.bank.test": "v=DMARC1; p=reject; rua=mailto:d@bank.test",
    "lists.test": "v=spf1 ip4:127.0.0.3 -all",
    "quar.test": "v=spf1 -all",
    "_dmarc.quar.test": "v=DMARC1; p=quarantine",
    "nopolicy.test": "v=spf1 -all",
    "_dmarc.nopolicy.test": "v=DMARC1; p=none",
    "mail.strict.test": "v=spf1 ip4:127.0.0.2 -all",
    "_dmarc.strict.test": "v=DMARC1; p=reject; aspf=s; adkim=s",
    "mail.relaxed.test": "v=spf1 ip4:127.0.0.2 -all",
    "_dmarc.relaxed.test": "v=DMARC1; p=reject",
    "news.example.co.uk": "v=spf1 -all",
    "_dmarc.example.co.uk": "v=DMARC1; p=reject; sp=quarantine",
    "zero.test": "v=spf1 -all",
    "_dmarc.zero.test": "v=DMARC1; p=reject; pct=0",
}
MAIL_ZONES = ["bank.test", "lists.test", "quar.test", "nopolicy.test", "strict.test",
              "relaxed.test", "example.co.uk", "zero.test"]


def mail_zone(keys):
    lines = [f'    local-zone: "{z}." static' for z in MAIL_ZONES]
    for name, value in {**MAIL_RECORDS, **keys}.items():
        lines.append(f"    local-data: '{name}. TXT {txt(value)}'")
    return "\n".join(lines)


def message(frm, subject, body="Hello.\r\n\r\nSee you  at   noon.\r\n"):
    return (f"From: {frm}\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
            f"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@x>\r\n"
            f"\r\n{body}")


@pytest.fixture
def mail_dns(tmp_path):
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    rsa_key, rsa_txt = new_key(keys_dir, "rsa")
    ed_key, ed_txt = new_key(keys_dir, "ed", ed=True)
    list_key, list_txt = new_key(keys_dir, "list")
    keys = {"rsa._domainkey.bank.test": rsa_txt, "ed._domainkey.bank.test": ed_txt,
            "arc._domainkey.lists.test": list_txt}
    dns = Unbound(tmp_path, mail_zone(keys))
    yield dns, {"rsa": rsa_key, "ed": ed_key, "list": list_key}
    dns.stop()


def checked_server(tmp_path, dns, extra="", fmt="maildir"):
    srv = tmp_path / f"srv{len(list(tmp_path.glob('srv*')))}"
    srv.mkdir()
    return Server(srv, fmt, extra=f"dns_servers = 127.0.0.1:{dns.port}\n{extra}",
                  users=users_with_password(srv, "checks-secret-1"))


def test_dkim_signatures_from_dkimpy_verify(tmp_path, mail_dns):
    """RSA 2048 and Ed25519, relaxed and simple; a tampered body; a key
    that does not exist; two signatures on one message."""
    dns, keys = mail_dns
    frm = "Treasurer <t@bank.test>"
    jobs = [
        {"msg": message(frm, "rsa relaxed"), "selector": "rsa", "domain": "bank.test", "key": keys["rsa"]},
        {"msg": message(frm, "rsa simple"), "selector": "rsa", "domain": "bank.test", "key": keys["rsa"],
         "canon": ["simple", "simple"]},
        {"msg": message(frm, "ed relaxed"), "selector": "ed", "domain": "bank.test", "key": keys["ed"],
         "ed": True},
        {"msg": message(frm, "ed simple"), "selector": "ed", "domain": "bank.test", "key": keys["ed"],
         "ed": True, "canon": ["relaxed", "simple"]},
        {"msg": message(frm, "tampered"), "selector": "rsa", "domain": "bank.test", "key": keys["rsa"]},
        {"msg": message(frm, "missing key"), "selector": "gone", "domain": "bank.test", "key": keys["rsa"]},
        {"msg": message(frm, "length"), "selector": "rsa", "domain": "bank.test", "key": keys["rsa"],
         "length": True},
        # Spooled to a file (past 32 KiB): its header is kept for the lookups.
        {"msg": message(frm, "big body", "A line of the report.\r\n" * 8000), "selector": "ed",
         "domain": "bank.test", "key": keys["ed"], "ed": True},
        # A header past what is kept: read by the helper first, then the keys.
        {"msg": "".join(f"X-Trace-{i}: {'t' * 60}\r\n" for i in range(700)) + message(frm, "big header"),
         "selector": "rsa", "domain": "bank.test", "key": keys["rsa"]},
    ]
    signed = sign(jobs)
    signed[4] = signed[4].replace("See you", "Meet me")
    # l=: text added below the signed body still passes, and is reported.
    signed[6] += "Unsigned postscript.\r\n"
    # Two signatures: Ed25519 over RSA.
    two = sign([{"msg": message(frm, "two"), "selector": "rsa", "domain": "bank.test", "key": keys["rsa"]}])[0]
    signed.append(sign([{"msg": two, "selector": "ed", "domain": "bank.test", "key": keys["ed"],
                         "ed": True}])[0])
    s = checked_server(tmp_path, dns)
    try:
        for m in signed:
            # From bank.test's own address: SPF passes too.
            send(s.port, "127.0.0.2", "t@bank.test", "bob@example.test", m)
        ar = results_by_subject(s)
        for subject in ("rsa relaxed", "rsa simple"):
            assert re.search(r"dkim=pass header\.d=bank\.test header\.s=rsa header\.b=\S{8}[; ]", ar[subject]), ar[subject]
        for subject in ("ed relaxed", "ed simple"):
            assert "dkim=pass header.d=bank.test header.s=ed" in ar[subject], ar[subject]
        assert "dkim=fail (body hash did not verify) header.d=bank.test" in ar["tampered"]
        assert "dkim=permerror (no key record) header.d=bank.test header.s=gone" in ar["missing key"]
        assert len(re.findall(r"dkim=pass", ar["two"])) == 2, ar["two"]
        assert re.search(r"dkim=pass \(l=(\d+) of (\d+) body octets\)", ar["length"]), ar["length"]
        signed_len, whole = map(int, re.search(r"l=(\d+) of (\d+)", ar["length"]).groups())
        assert whole - signed_len == len("Unsigned postscript.\r\n")
        assert "dmarc=pass" in ar["rsa relaxed"]
        assert "dkim=pass header.d=bank.test header.s=ed" in ar["big body"], ar["big body"]
        assert "dkim=pass header.d=bank.test header.s=rsa" in ar["big header"], ar["big header"]
    finally:
        s.stop()


def test_trusted_networks_are_neither_checked_nor_marked(tmp_path, mail_dns):
    dns, _ = mail_dns
    s = checked_server(tmp_path, dns, "trusted_networks = 127.0.0.9/32, ::1\n")
    try:
        # The forged CEO from a trusted address is the admin's own doing.
        send(s.port, "127.0.0.9", "ceo@bank.test", "bob@example.test", message("ceo@bank.test", "trusted"))
        send(s.port, "127.0.0.5", "x@nopolicy.test", "bob@example.test", message("x@nopolicy.test", "stranger"))
        ar = results_by_subject(s)
        assert ar["trusted"] is None
        assert "spf=fail" in ar["stranger"]
    finally:
        s.stop()


def smtp_refusal(port, source, sender, msg):
    try:
        send(port, source, sender, "bob@example.test", msg)
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    return None


def test_dmarc_policies(tmp_path, mail_dns):
    dns, keys = mail_dns
    s = checked_server(tmp_path, dns)
    try:
        # Aligned by DKIM alone, from an address SPF does not allow.
        signed = sign([{"msg": message("t@bank.test", "aligned dkim"), "selector": "rsa",
                        "domain": "bank.test", "key": keys["rsa"]}])[0]
        assert smtp_refusal(s.port, "127.0.0.5", "bounce@nopolicy.test", signed) is None
        # The forged CEO: unaligned, p=reject, 550 5.7.1 at the end of DATA.
        code, text = smtp_refusal(s.port, "127.0.0.5", "ceo@bank.test", message("ceo@bank.test", "forged"))
        assert code == 550 and text.startswith("5.7.1") and "bank.test" in text, text
        assert s.wait_logged("result=rejected")
        # Strict SPF alignment: mail.strict.test is not strict.test...
        code, _ = smtp_refusal(s.port, "127.0.0.2", "x@mail.strict.test", message("x@strict.test", "strict"))
        assert code == 550
        # ...and relaxed alignment takes the organizational domain.
        assert smtp_refusal(s.port, "127.0.0.2", "x@mail.relaxed.test",
                            message("x@relaxed.test", "relaxed")) is None
        # A subdomain under a two-label public suffix: the record of
        # example.co.uk speaks through sp=quarantine.
        assert smtp_refusal(s.port, "127.0.0.5", "x@news.example.co.uk",
                            message("x@news.example.co.uk", "subdomain")) is None
        # pct=0: reject becomes quarantine; p=quarantine: Junk; p=none: INBOX.
        assert smtp_refusal(s.port, "127.0.0.5", "x@zero.test", message("x@zero.test", "sampled")) is None
        assert smtp_refusal(s.port, "127.0.0.5", "x@quar.test", message("x@quar.test", "quarantined")) is None
        assert smtp_refusal(s.port, "127.0.0.5", "x@nopolicy.test", message("x@nopolicy.test", "p none")) is None
        inbox = results_by_subject(s)
        junk = results_by_subject(s, folder="Junk")
        assert set(inbox) == {"aligned dkim", "relaxed", "p none"}, inbox
        assert set(junk) == {"subdomain", "sampled", "quarantined"}, junk
        assert "dmarc=pass" in inbox["aligned dkim"]
        assert "dmarc=pass header.from=relaxed.test" in inbox["relaxed"]
        assert "dmarc=fail (p=none applied=none dis=none) header.from=nopolicy.test" in inbox["p none"]
        assert "dmarc=fail (p=quarantine applied=quarantine dis=junk) header.from=news.example.co.uk" \
            in junk["subdomain"], junk["subdomain"]
        assert "dmarc=fail (p=reject applied=quarantine dis=junk) header.from=zero.test" in junk["sampled"]
        # What the checks put into Junk says so, and why (issue 19).
        for raw in folder_messages(s, "bob", "Junk"):
            assert b"\nX-Spam: yes\n" in raw, raw[:600]
            assert re.search(rb'\nX-Spam-Status: Yes, reason="DMARC (quarantine|reject) for ', raw), raw[:600]
        for raw in s.raw_messages("bob"):
            assert b"X-Spam" not in raw
        # Junk was made on first use, subscribed, with \Junk.
        subscribed = (s.mailbox_path("bob") / "subscriptions").read_text().split()
        assert "Junk" in subscribed
    finally:
        s.stop()


def test_dmarc_reject_junk_and_spf_fail_keys(tmp_path, mail_dns):
    dns, _ = mail_dns
    s = checked_server(tmp_path, dns, "dmarc_reject = junk\nspf_fail = reject\n")
    try:
        # p=reject goes to Junk instead of a 550.
        assert smtp_refusal(s.port, "127.0.0.5", "ceo@bank.test", message("ceo@bank.test", "forged")) is None
        assert set(results_by_subject(s, folder="Junk")) == {"forged"}
        # p=none does not decide: SPF's fail alone is refused, by spf_fail.
        code, text = smtp_refusal(s.port, "127.0.0.5", "x@nopolicy.test", message("x@nopolicy.test", "spf"))
        assert code == 550 and "SPF fail for nopolicy.test from 127.0.0.5" in text, text
    finally:
        s.stop()


def test_quarantine_in_mbox_storage_goes_to_folders_junk(tmp_path, mail_dns):
    dns, _ = mail_dns
    s = checked_server(tmp_path, dns, fmt="mbox")
    try:
        assert smtp_refusal(s.port, "127.0.0.5", "x@quar.test", message("x@quar.test", "quarantined")) is None
        root = s.mailbox_path("bob").parent  # mbox: the user's folder
        text = (root / "folders/Junk").read_text()
        assert text.startswith("From x@quar.test ") and "Subject: quarantined" in text
        assert "dmarc=fail (p=quarantine applied=quarantine dis=junk) header.from=quar.test" in text
        inbox = root / "INBOX"
        assert not inbox.exists() or "quarantined" not in inbox.read_text()
        assert "Junk" in (root / "subscriptions").read_text().split()
    finally:
        s.stop()


def list_copy(keys, trusted_id="lists.test"):
    """bank.test's signed message as a mailing list sends it on: Subject
    tagged (its DKIM signature breaks), then sealed by lists.test."""
    original = sign([{"msg": message("ceo@bank.test", "announce"), "selector": "rsa",
                      "domain": "bank.test", "key": keys["rsa"]}])[0]
    relayed = original.replace("Subject: announce", "Subject: [list] announce")
    relayed = (f"Authentication-Results: {trusted_id}; dkim=pass header.d=bank.test;"
               f" spf=pass smtp.mailfrom=ceo@bank.test\r\n") + relayed
    return sign([{"msg": relayed, "selector": "arc", "domain": "lists.test", "key": keys["list"],
                  "arc": True}])[0]


def test_arc_chain_from_a_trusted_sealer_lets_dmarc_failure_through(tmp_path, mail_dns):
    dns, keys = mail_dns
    sealed = list_copy(keys)
    assert sealed.startswith("ARC-Seal: i=1;"), sealed[:200]
    untrusting = checked_server(tmp_path, dns)
    try:
        code, _ = smtp_refusal(untrusting.port, "127.0.0.3", "list-bounces@lists.test", sealed)
        assert code == 550
    finally:
        untrusting.stop()
    trusting = checked_server(tmp_path, dns, "arc_trusted_sealers = other.example, lists.test\n")
    try:
        assert smtp_refusal(trusting.port, "127.0.0.3", "list-bounces@lists.test", sealed) is None
        ar = results_by_subject(trusting)["[list] announce"]
        assert "arc=pass (i=1 sealer=lists.test)" in ar, ar
        assert "dkim=fail" in ar and "dmarc=fail (p=reject applied=reject dis=none overridden" in ar, ar
        # A seal broken in transit fails the chain: no pass for it.
        broken = sealed.replace("See you", "Meet me")
        assert smtp_refusal(trusting.port, "127.0.0.3", "list-bounces@lists.test", broken)[0] == 550
    finally:
        trusting.stop()


AUTHRES = r"""
import json, sys, authres
out = []
for value in json.load(sys.stdin):
    h = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)
    out.append({"id": h.authserv_id,
                "results": [[r.method, r.result, {p.type + "." + p.name: p.value for p in r.properties}]
                            for r in h.results]})
print(json.dumps(out))
"""


def test_authentication_results_over_imap_parse_and_forgeries_go(tmp_path, mail_dns):
    dns, keys = mail_dns
    s = checked_server(tmp_path, dns, "listen_imap = 127.0.0.1:0\n")
    try:
        forged = ("Authentication-Results: mx.example.test; dkim=pass header.d=bank.test;"
                  " dmarc=pass header.from=bank.test\r\n"
                  "Authentication-Results: MX.EXAMPLE.TEST (forged in capitals); spf=pass\r\n"
                  "Authentication-Results: relay.other.test; spf=pass smtp.mailfrom=t@bank.test\r\n")
        signed = sign([{"msg": message("t@bank.test", "parsed"), "selector": "rsa",
                        "domain": "bank.test", "key": keys["rsa"]}])[0]
        send(s.port, "127.0.0.2", "t@bank.test", "alice@example.test", forged + signed)
        # A logged-in user's message: auth=pass smtp.auth=USER.
        with smtplib.SMTP("127.0.0.1", s.port, timeout=60) as c:
            c.login("alice@example.test", "checks-secret-1")
            c.sendmail("alice@example.test", ["alice@example.test"], message("alice@example.test", "own"))
        # Read back as a mail client reads it: over IMAP.
        m = imaplib.IMAP4("127.0.0.1", s.ports["IMAP"], timeout=30)
        m.login("alice@example.test", "checks-secret-1")
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT AUTHENTICATION-RESULTS)])")
        assert typ == "OK"
        m.logout()
        got = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[1].decode()
            subject = re.search(r"^Subject: (.*?)\r$", head, re.M).group(1)
            fields = re.findall(r"^Authentication-Results:(.*?)\r\n(?![ \t])", head, re.M | re.S)
            got[subject] = fields
        # Ours, and the other server's; both forgeries in our name gone.
        assert len(got["parsed"]) == 2, got["parsed"]
        parsed = subprocess.run([SYSTEM_PYTHON, "-c", AUTHRES], input=json.dumps(got["parsed"] + got["own"]),
                                capture_output=True, text=True, timeout=60)
        assert parsed.returncode == 0, parsed.stderr
        ours, other, own = json.loads(parsed.stdout)
        assert ours["id"] == "mx.example.test" and other["id"] == "relay.other.test"
        methods = {r[0]: r for r in ours["results"]}
        assert methods["spf"][1] == "pass" and methods["spf"][2]["smtp.mailfrom"] == "t@bank.test"
        assert methods["dkim"][1] == "pass" and methods["dkim"][2]["header.d"] == "bank.test"
        assert methods["dkim"][2]["header.s"] == "rsa" and len(methods["dkim"][2]["header.b"]) == 8
        assert methods["dmarc"][1] == "pass" and methods["dmarc"][2]["header.from"] == "bank.test"
        assert methods["iprev"][1] == "permerror" and methods["iprev"][2]["policy.iprev"] == "127.0.0.2"
        assert methods["arc"][1] == "none"
        assert own["results"] == [["auth", "pass", {"smtp.auth": "alice@example.test"}]]
    finally:
        s.stop()
