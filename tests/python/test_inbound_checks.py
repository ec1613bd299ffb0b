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
    "limit.spf.test": "v=spf1 " + " ".join(f"a:host3.spf.test/{24 + i}" for i in range(8))
                      + " include:ip4.spf.test include:cidr.spf.test -all",
    "limit-ok.spf.test": "v=spf1 " + " ".join(f"a:host3.spf.test/{24 + i}" for i in range(8))
                         + " include:ip4.spf.test -all",
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
    'liar.spf.test. A 127.0.0.99',
    '127.0.0.8.ok.spf.test. A 127.0.0.2',
    '2.0.0.127.rev.spf.test. A 127.0.0.2',
    'alice.users.spf.test. A 127.0.0.2',
    'spf.test.dom.spf.test. A 127.0.0.2',
    'lminus.parts.spf.test. A 127.0.0.2',
    'helo.client.test.helo.spf.test. A 127.0.0.2',
    'in-addr.ver.spf.test. A 127.0.0.2',
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
