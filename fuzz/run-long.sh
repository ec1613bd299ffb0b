#!/bin/sh
# Runs one fuzz target for SECONDS (default 1260: 21 CPU minutes) on its
# seed corpus, niced, logging to ../fuzz-logs/TARGET.log. Further
# arguments go to libFuzzer (the whole-message targets want
# -max_len=1048576 -timeout=5). Not part of CI.
set -eu
cd "$(dirname "$0")"
t=$1; secs=${2:-1260}
[ $# -ge 2 ] && shift 2 || shift $#
mkdir -p corpus/$t seeds/$t ../fuzz-logs
RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run "$t" corpus/$t seeds/$t -- \
  -max_total_time=$secs -print_final_stats=1 "$@" > ../fuzz-logs/$t.log 2>&1
