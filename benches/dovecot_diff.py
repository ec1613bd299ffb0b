#!/usr/bin/env python3
"""`make test-dovecot-diff`: the same messages in postling's and a
private Dovecot's Maildir, the same commands to both, and every answer
that differs printed: FETCH ENVELOPE, BODYSTRUCTURE, BINARY.SIZE and
RFC822.SIZE per message, a table of SEARCH keys, SORT and THREAD.

The messages: Python's email test suite's samples (read where Python
has them), messages generated as `bench-headers` makes them, and the
edge cases of tests/python/test_imap_answers.py. Exits 1 when a
difference is not one the README explains (`KNOWN` below names each
with the RFC section that decides it).

Loopback only; every process started here is stopped here."""

import glob
import os
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/python"))

from benchnet import ImapClient  # noqa: E402
from header_search import messages as generated  # noqa: E402
from imap_vs_dovecot import MAIL_USER, PASSWORD, POSTLING, Dovecot, Postling  # noqa: E402
from pop3_vs_dovecot import hash_password  # noqa: E402
import test_imap_answers as edge  # noqa: E402

GENERATED = int(os.environ.get("DIFF_GENERATED", "200"))
SEARCHES = [
    'FROM "garcia"', 'FROM "example.org"', 'TO "example.net"', 'CC "meyer"',
    'SUBJECT "re"', 'SUBJECT "budget"', 'TEXT "filename="', 'TEXT "budget"',
    'BODY "report"', 'HEADER Message-ID "@"', 'HEADER References "<"',
    'HEADER Content-Type "multipart"', 'LARGER 5000', 'SMALLER 1000',
    'SENTBEFORE 1-Jan-2020', 'SENTSINCE 1-Jan-2021', 'NOT SUBJECT "re"',
    'OR FROM "silva" TO "silva"',
]
SORTS = ["(SUBJECT)", "(FROM)", "(TO)", "(CC)", "(DATE)", "(SIZE)", "(ARRIVAL)",
         "(REVERSE DATE)", "(DISPLAYFROM)"]
THREADS = ["REFERENCES", "ORDEREDSUBJECT"]

# Differences the README explains ("Differences from Dovecot"): by what
# was asked and of which message (a sample's file name), or by command.
MALFORMED_NESTING = "nested multiparts reuse a boundary, or a part holds an enclosing delimiter line (RFC 2046 5.1.1 forbids both): postling splits at every delimiter line of the multipart"
PLACEHOLDERS = "an address without a local part or domain: postling gives an empty string (RFC 3501 7.4.2 keeps NIL for groups), Dovecot invents MISSING_MAILBOX / MISSING_DOMAIN"
KNOWN = {
    ("BINARY.SIZE[1]", "msg_15.txt"): MALFORMED_NESTING,
    ("BINARY.SIZE[1]", "msg_38.txt"): MALFORMED_NESTING,
    ("BINARY.SIZE[1]", "msg_39.txt"): MALFORMED_NESTING + "; Dovecot drops the connection",
    ("BODYSTRUCTURE", "msg_15.txt"): MALFORMED_NESTING,
    ("BODYSTRUCTURE", "msg_39.txt"): MALFORMED_NESTING,
    ("BODYSTRUCTURE", "msg_14.txt"): "a Content-Type that does not parse: postling gives text/plain; charset=us-ascii (RFC 2045 5.2), Dovecot empty strings",
    ("BODYSTRUCTURE", "msg_16.txt"): "type and subtype as written (MESSAGE/RFC822; RFC 2045 5.1: case does not matter), Dovecot lower-cases message/rfc822",
    ("BODYSTRUCTURE", "msg_33.txt"): "parameters in another order (RFC 2045 5.1 gives their order no meaning)",
    ("ENVELOPE", "msg_05.txt"): PLACEHOLDERS,
    ("ENVELOPE", "msg_15.txt"): PLACEHOLDERS,
    ("ENVELOPE", "msg_43.txt"): PLACEHOLDERS,
    ("ENVELOPE", "msg_27.txt"): "a folded Subject keeps the tab that began its continuation line (RFC 5322 2.2.3 unfolding removes only the CRLF), Dovecot makes it a space",
    ("SEARCH", "SENTBEFORE 1-Jan-2020"): "a message without a Date: field has no sent date, so no SENT* key matches it (RFC 3501 6.4.4); Dovecot matches it",
    ("SORT", "(DATE)"): "msg_47.txt's Date (01 Jan 2001 00:01+0000: no space before the zone, RFC 5322 3.3) is read by postling, not by Dovecot, which sorts it by INTERNALDATE (RFC 5256)",
    ("SORT", "(REVERSE DATE)"): "as SORT (DATE)",
    ("THREAD", "REFERENCES"): "as SORT (DATE): threads are ordered by date",
    ("THREAD", "ORDEREDSUBJECT"): "as SORT (DATE)",
    ("SORT", "(FROM)"): PLACEHOLDERS + ", which sorts msg_43.txt apart",
    ("SORT", "(DISPLAYFROM)"): PLACEHOLDERS + " (msg_05.txt displays as foo@MISSING_DOMAIN there)",
}


def corpus():
    """(name, octets) of each message."""
    out = []
    try:
        import test.test_email as t
        data = os.path.join(os.path.dirname(t.__file__), "data")
        for p in sorted(glob.glob(os.path.join(data, "msg_*.txt"))):
            out.append((os.path.basename(p), open(p, "rb").read().replace(b"\r\n", b"\n")))
    except ImportError:
        pass
    out.extend((f"generated-{i}", m) for i, m in enumerate(messages_generated()))
    for i, m in enumerate((edge.ATTACHMENT, edge.NO_CHARSET, edge.NAMES, edge.PARENT,
                           edge.FOLDED, edge.JUNK)):
        out.append((f"edge-{i}", m.replace(b"\r\n", b"\n")))
    return out


def why(key, names, p, d):
    """The README's reason for a difference, or None."""
    kind, what = key
    if isinstance(what, int):
        what = names[what - 1]
    if kind.startswith("BINARY.SIZE"):
        # Dovecot's BINARY.SIZE against its own BINARY[] (RFC 3516 4.2).
        m = re.search(rb"BINARY.SIZE\[1\] (\d+)\)\s+\(BINARY\[1\] gives (\d+)\)", d)
        if m and m.group(1) != m.group(2):
            return "Dovecot's BINARY.SIZE is not the size of its own BINARY[] (RFC 3516 4.2 says it is)"
    return KNOWN.get((kind, what))


def messages_generated():
    out = []
    for i, m in enumerate(generated(random.Random(2))):
        if i >= GENERATED:
            break
        out.append(m)
    return out


def place(folder: Path, msgs):
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(msgs):
        name = f"{1700000000 + i}.M{i}P1Q{i}.diff,S={len(text)}"
        (folder / "cur" / (name + ":2,S")).write_bytes(text)
        os.utime(folder / "cur" / (name + ":2,S"), (1700000000 + i, 1700000000 + i))


def client(port):
    c = ImapClient(port, ("reader@example.test", PASSWORD), timeout=120)
    c.ok("SELECT INBOX")
    return c


def normal(answer: bytes) -> bytes:
    """A literal holding a plain string as the quoted string it could
    have been (servers may choose either)."""
    out, pos = b"", 0
    for m in re.finditer(rb"\{(\d+)\}\r\n", answer):
        if m.start() < pos:
            continue
        text = answer[m.end():m.end() + int(m.group(1))]
        plain = not re.search(rb'[\r\n"\\]', text)
        out += answer[pos:m.start()] + (b'"' + text + b'"' if plain else m.group(0) + text)
        pos = m.end() + len(text)
    return out + answer[pos:]


def answers(port, count):
    c = client(port)
    out = {}
    for item in ("ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BINARY.SIZE[1]"):
        for n in range(1, count + 1):
            try:
                lines, status = c.run(f"FETCH {n} ({item})")
            except RuntimeError:
                # The server hung up on this one: say so, go on.
                out[(item, n)] = b"DISCONNECTED"
                c = client(port)
                continue
            body = b"".join(l for l in lines if l.startswith(f"* {n} FETCH".encode()))
            if item.startswith("BINARY.SIZE") and status == b"OK":
                # What BINARY[] itself gives, to tell a server that
                # disagrees with itself.
                got, _ = c.run(f"FETCH {n} (BINARY.PEEK[1])")
                m = re.search(rb"BINARY\[1\] \{(\d+)\}", b"".join(got))
                body += b" (BINARY[1] gives " + (m.group(1) if m else b"?") + b")"
            out[(item, n)] = status + b" " + normal(body.strip())
    for key in SEARCHES:
        lines, status = c.run(f"SEARCH {key}")
        out[("SEARCH", key)] = status + b" " + b"".join(lines).strip()
    for key in SORTS:
        lines, status = c.run(f"SORT {key} UTF-8 ALL")
        out[("SORT", key)] = status + b" " + b"".join(lines).strip()
    for alg in THREADS:
        lines, status = c.run(f"THREAD {alg} UTF-8 ALL")
        out[("THREAD", alg)] = status + b" " + b"".join(lines).strip()
    return out


def main():
    if not POSTLING.exists():
        sys.exit("build first: cargo build --release")
    named = corpus()
    names = [n for n, _ in named]
    msgs = [m for _, m in named]
    base = Path(tempfile.mkdtemp(prefix="postling-diff-"))
    base.chmod(0o755)
    users_text = f"reader@example.test:{hash_password()}\n"
    got = {}
    try:
        for cls in (Postling, Dovecot):
            work = base / cls.name
            work.mkdir()
            server = cls(work, users_text)
            try:
                place(server.mail / "reader", msgs)
                if cls is Dovecot:
                    os.system(f"chown -R {MAIL_USER} {server.mail}")
                got[cls.name] = answers(server.port, len(msgs))
            finally:
                server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    p, d = got["postling"], got["dovecot"]
    differ = [k for k in p if p[k] != d.get(k)]
    kinds = {}
    for k in differ:
        kinds.setdefault(k[0], []).append(k)
    print(f"{len(msgs)} messages, {len(p)} answers compared, {len(differ)} differ")
    for kind, keys in sorted(kinds.items()):
        print(f"== {kind}: {len(keys)} differ")
        for k in keys[: int(os.environ.get("DIFF_SHOW", "3"))]:
            print(f"  {k}\n    postling: {p[k][:600]!r}\n    dovecot:  {d[k][:600]!r}")
    unexplained = [k for k in differ if why(k, names, p[k], d[k]) is None]
    reasons = {}
    for k in differ:
        r = why(k, names, p[k], d[k])
        if r:
            reasons.setdefault(r, []).append(k)
    print("explained:")
    for r, keys in reasons.items():
        print(f"  {len(keys)} x {r}")
    for k in unexplained:
        print(f"UNEXPLAINED {k}: {names[k[1] - 1] if isinstance(k[1], int) else ''}")
    sys.exit(1 if unexplained else 0)


if __name__ == "__main__":
    main()
