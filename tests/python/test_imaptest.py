"""Dovecot's IMAP compliance tester (imaptest, in the shared tools next
to this repository) against the real server: every scripted test whose
capabilities we advertise must pass. Skipped, saying so, where the tools
folder is not there; `make test-imaptest` runs it on its own."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, Server, users_with_password

CANDIDATES = [os.environ.get("IMAPTEST_TOOLS", ""),
              str(ROOT.parent / "shared/tools/imaptest"),
              "/work/shared/tools/imaptest"]
TOOLS = next((Path(c) for c in CANDIDATES if c and (Path(c) / "run.sh").exists()), None)


@pytest.mark.skipif(TOOLS is None, reason="imaptest tools folder not found")
@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_imaptest_compliance(tmp_path, fmt):
    prefix = subprocess.run([str(TOOLS / "build.sh")], capture_output=True,
                            text=True, timeout=900)
    assert prefix.returncode == 0, prefix.stderr[-3000:]
    s = Server(tmp_path, fmt, users=users_with_password(tmp_path, "imaptest-pw"),
               extra="listen_imap = 127.0.0.1:0")
    try:
        out = subprocess.run(
            [str(TOOLS / "run.sh"), "compliance", "127.0.0.1",
             str(s.ports["IMAP"]), "alice@example.test", "imaptest-pw"],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "IMAPTEST_PREFIX": prefix.stdout.strip()})
    finally:
        s.stop()
    summary = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, 0 failed, \d+ skipped", summary), out.stdout[-4000:]
    passed = int(summary.split()[0])
    # Dovecot 2.3 passes 69 and skips 2 (sort-partial, urlauth2).
    assert passed >= 69, out.stdout[-4000:]
