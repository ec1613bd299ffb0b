#!/bin/sh
# Seeds the whole-message targets' corpus with real mail: the sample
# messages of Python's email test suite (from the Python that runs our
# tests), with CRLF line ends, one a unit, and in folders of three.
# They are read where they are installed, not copied into this tree.
set -eu
cd "$(dirname "$0")"
src=$(python3 -c 'import os, test.test_email as t; print(os.path.join(os.path.dirname(t.__file__), "data"))')
mkdir -p corpus/message_raw
python3 - "$src" <<'PY'
import glob, os, sys
files = sorted(glob.glob(os.path.join(sys.argv[1], "msg_*.txt")))
msgs = [open(p, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for p in files]
for p, m in zip(files, msgs):
    open("corpus/message_raw/real-" + os.path.basename(p), "wb").write(m)
for i in range(0, len(msgs) - 2, 3):
    open(f"corpus/message_raw/real-folder-{i:02d}", "wb").write(b"\0".join(msgs[i:i + 3]))
print(f"{len(msgs)} real messages seeded")
PY
