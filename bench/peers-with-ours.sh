#!/usr/bin/env bash
# peers-with-ours.sh - mail-test-srv (release build) measured side by side with the peers by
# ../shared/bench/peers.sh (smtp-sink, aiosmtpd, maildev, Node smtp-server), then our mailer
# measured against smtp-sink and our server in the same conditions (bench/mailer-anchors.sh).
#
# Usage (from anywhere; peers installed once with `../shared/bench/peers.sh --install`):
#   bench/peers-with-ours.sh
# Knobs: those of peers.sh (REPS=3, SERVERS, WORKLOADS, CLIENTS, OUT_DIR, MD_OUT, QUIET_MAX) and
#   FAULT='mail:close:0%'   the fault rule loaded into ours: evaluated at every MAIL, never fires
#   PEERS_SH=path           peers.sh to use (default: ../shared/bench/peers.sh from the repo root)
#   NO_BUILD=1              use target/release as it is
#   LOAD_MAX=0.8 LOAD_WAIT=300   wait up to LOAD_WAIT s for a 1-minute load average below LOAD_MAX
#   ANCHORS=0               skip the mailer part
# Output: OUT_DIR/report.md (peers.sh's tables, ours included), OUT_DIR/mailer.tsv,
#   OUT_DIR/machine.txt; everything raw under OUT_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_SH=${PEERS_SH:-$ROOT/../shared/bench/peers.sh}
SRV=$ROOT/target/release/mail-test-srv
FAULT=${FAULT:-mail:close:0%}
export REPS=${REPS:-3}
export OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/peers-ours-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"

[[ -x $PEERS_SH ]] || { echo "peers.sh not found at $PEERS_SH (set PEERS_SH)" >&2; exit 2; }
if [[ ${NO_BUILD:-0} != 1 ]]; then
    cargo build --release --manifest-path "$ROOT/Cargo.toml" -p mail-test-srv -p harness
fi
[[ -x $SRV ]] || { echo "$SRV is missing (build it: cargo build --release -p mail-test-srv)" >&2; exit 2; }

# The fault plan must really be loaded: ask a throw-away instance what it holds.
: >"$OUT_DIR/fault-check.log"
"$SRV" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --seed 1 --fault "$FAULT" >>"$OUT_DIR/fault-check.log" 2>&1 &
check_pid=$!
for _ in $(seq 100); do grep -q '^READY' "$OUT_DIR/fault-check.log" && break; sleep 0.05; done
http=$(sed -n 's/^READY .* http=\([^ ]*\).*/\1/p' "$OUT_DIR/fault-check.log")
rules=$(curl -s --noproxy '*' "http://$http/api/v1/faults" || true)
kill -TERM "$check_pid"; wait "$check_pid" || true
echo "fault plan of ours: $rules" | tee "$OUT_DIR/fault-plan.txt"
grep -q '"rules":\[[^]]' <<<"$rules" || { echo "the fault plan did not load" >&2; exit 1; }

wait_load() {   # the brief's quiet condition: 1-minute load average below LOAD_MAX
    local max=${LOAD_MAX:-0.8} end=$(( $(date +%s) + ${LOAD_WAIT:-300} )) load
    while :; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        awk -v l="$load" -v m="$max" 'BEGIN{exit !(l < m)}' && break
        (( $(date +%s) >= end )) && { echo "load still $load after ${LOAD_WAIT:-300} s; measuring anyway" >&2; break; }
        sleep 5
    done
    echo "$(date -u +%FT%TZ) loadavg before $1: $(cat /proc/loadavg)" | tee -a "$OUT_DIR/load.txt" >&2
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "nproc: $(nproc)"
    echo "kernel: $(uname -srvm)"
    lscpu | head
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD) $(git -C "$ROOT" status --porcelain -- mail-test-srv mailer | wc -l) changed files in mail-test-srv/ mailer/"
    echo "ours: $SRV --fault $FAULT"
} >"$OUT_DIR/machine.txt"

wait_load peers.sh
# {PORT} is chosen by peers.sh; the HTTP port is 0 and read back from our READY line by
# ours-count.sh (peers.sh sends our stdout to its log and passes the PID).
EXTRA_SERVER="ours=$SRV --smtp 127.0.0.1:{PORT} --http 127.0.0.1:0 --seed 1 --fault $FAULT" \
EXTRA_COUNT="$ROOT/bench/ours-count.sh {PID}" \
    "$PEERS_SH" || true   # its last line is `[[ -n $MD_OUT ]] && cp ..`: status 1 without MD_OUT
[[ -s $OUT_DIR/report.md ]] || { echo "peers.sh wrote no report" >&2; exit 1; }

if [[ ${ANCHORS:-1} != 0 ]]; then
    wait_load mailer-anchors.sh
    "$ROOT/bench/mailer-anchors.sh"
fi
echo "done: $OUT_DIR (report.md, mailer.tsv, machine.txt, load.txt)" >&2
