#!/usr/bin/env bash
# web_page.sh - the web page's numbers (issue 14) in headless Chromium: first load and first paint
# with MESSAGES stored, and a new message visible in the list after its 250. Runs the release
# example mail-test-srv/examples/web_page.rs (server in-process, release profile; the browser
# driven through chromedriver), after a note of the machine and the load.
#
# Usage: bench/web_page.sh            (MESSAGES=100000 REPS=5 SENDS=20 by default)
#        OUT=bench/results/DATE/web_page.txt bench/web_page.sh   # also keep the output
# Needs chromium and chromium-driver (.ci/install-deps). Loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESSAGES=${MESSAGES:-100000}
REPS=${REPS:-5}
SENDS=${SENDS:-20}
for p in /usr/bin/chromium /usr/bin/chromedriver; do
    [[ -x $p ]] || { echo "$p is missing (.ci/install-deps installs chromium and chromium-driver)" >&2; exit 2; }
done
cd "$ROOT"
cargo build --release -q -p mail-test-srv --example web_page
run() {
    echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# $(/usr/bin/chromium --version 2>/dev/null), git $(git rev-parse --short HEAD)"
    echo "# target/release/examples/web_page --messages $MESSAGES --reps $REPS --sends $SENDS"
    target/release/examples/web_page --messages "$MESSAGES" --reps "$REPS" --sends "$SENDS"
}
if [[ -n ${OUT:-} ]]; then
    mkdir -p "$(dirname "$OUT")"
    run | tee "$OUT"
else
    run
fi
