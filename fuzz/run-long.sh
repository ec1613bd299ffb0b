#!/bin/sh
# Runs one fuzz target for SECONDS (default 1260: 21 CPU minutes) on its
# seed corpus, niced, logging to ../fuzz-logs/TARGET.log. Not part of CI.
set -eu
cd "$(dirname "$0")"
t=$1; secs=${2:-1260}
mkdir -p corpus/$t ../fuzz-logs
RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run "$t" corpus/$t seeds/$t -- \
  -max_total_time=$secs -print_final_stats=1 > ../fuzz-logs/$t.log 2>&1
