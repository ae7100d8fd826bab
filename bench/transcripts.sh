#!/usr/bin/env bash
# transcripts.sh - what session transcripts cost: workload (b) of the peer benchmark
# (smtp-source, 10 sessions, 20,000 x 1 KB messages) against a release mail-test-srv with
# --transcripts on and off, alternating, REPS times; then RSS per kept session and the time of
# GET /api/v1/sessions?limit=50 with 10,000 closed sessions kept.
#
# Usage: cargo build --release -p mail-test-srv && bench/transcripts.sh
# Knobs: REPS=5 (runs per mode; 0 skips the first part), SESSIONS=10000 (kept sessions).
# Output: one line per run, then the medians. Loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRV=$ROOT/target/release/mail-test-srv
REPS=${REPS:-5}
SESSIONS=${SESSIONS:-10000}
SOURCE=(/usr/sbin/smtp-source -d -M localhost -f a@example.test -t b@example.test)
[[ -x $SRV ]] || { echo "build it first: cargo build --release -p mail-test-srv" >&2; exit 2; }
[[ -x ${SOURCE[0]} ]] || { echo "smtp-source is missing (.ci/install-deps installs postfix)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Starts the server with "$@"; sets PID, SMTP_PORT, HTTP.
start() {
    "$SRV" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --max-connections 20000 "$@" >"$work/out" 2>/dev/null &
    PID=$!
    for _ in $(seq 200); do grep -q '^READY' "$work/out" && break; sleep 0.02; done
    SMTP_PORT=$(sed -n 's/^READY smtp=[^:]*:\([0-9]*\) .*/\1/p' "$work/out")
    HTTP=$(sed -n 's/^READY .* http=\([^ ]*\) .*/\1/p' "$work/out")
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }
rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
# Server CPU time (user + system) in microseconds: steadier than msgs/s on a busy machine.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000000 / hz}' "/proc/$PID/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), git $(git -C "$ROOT" rev-parse --short HEAD)"
for rep in $(seq "$REPS"); do
    for mode in on off; do
        start --transcripts "$mode"
        t0=$(date +%s.%N)
        "${SOURCE[@]}" -s 10 -m 20000 -l 1024 "127.0.0.1:$SMTP_PORT" >/dev/null 2>&1
        t1=$(date +%s.%N)
        count=$(curl -s --noproxy '*' "http://$HTTP/count")
        rate=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 20000 / (b - a)}')
        per_msg=$(awk -v c="$(cpu_us)" 'BEGIN {printf "%.1f", c / 20000}')
        echo "run $rep transcripts=$mode: $rate msgs/s, server CPU $per_msg us/msg, stored $count, peak RSS $(( $(rss_kib) / 1024 )) MiB" | tee -a "$work/runs"
        stop
    done
done
if (( REPS > 0 )); then
    on=$(grep 'transcripts=on' "$work/runs" | sed 's/.*: \([0-9]*\) msgs.*/\1/' | median)
    off=$(grep 'transcripts=off' "$work/runs" | sed 's/.*: \([0-9]*\) msgs.*/\1/' | median)
    echo "median (b): on $on msgs/s, off $off msgs/s, ratio $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')"
    con=$(grep 'transcripts=on' "$work/runs" | sed 's/.*CPU \([0-9.]*\) us.*/\1/' | median)
    coff=$(grep 'transcripts=off' "$work/runs" | sed 's/.*CPU \([0-9.]*\) us.*/\1/' | median)
    echo "median server CPU per message: on $con us, off $coff us, ratio $(awk -v a="$con" -v b="$coff" 'BEGIN {printf "%.2f", a / b}')"
fi

# Kept sessions: one message per connection (no -d), SESSIONS of them.
start --transcripts on --max-sessions "$SESSIONS"
before=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
/usr/sbin/smtp-source -M localhost -f a@example.test -t b@example.test -s 20 -m "$SESSIONS" -l 1024 \
    "127.0.0.1:$SMTP_PORT" >/dev/null 2>&1
after=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
kept=$(curl -s --noproxy '*' "http://$HTTP/api/v1/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"]; print(s["kept"], s["transcript_bytes"])')
read -r kept_n transcript_bytes <<<"$kept"
stored_bytes=$(curl -s --noproxy '*' "http://$HTTP/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored"]["bytes"])')
echo "kept sessions: $kept_n; RSS $((before / 1024)) -> $((after / 1024)) MiB; transcript bytes $transcript_bytes ($(( transcript_bytes / kept_n )) per session); messages held $stored_bytes bytes; RSS growth per session less the messages: $(( (after * 1024 - before * 1024 - stored_bytes) / kept_n )) bytes"
for _ in $(seq 21); do
    curl -s --noproxy '*' -o /dev/null -w '%{time_total}\n' "http://$HTTP/api/v1/sessions?limit=50"
done | median | awk '{printf "GET /api/v1/sessions?limit=50 with %s kept: median %.2f ms over 21 requests\n", "'"$kept_n"'", $1 * 1000}'
for filter in 'fault=true' 'refused=true' 'peer=127.0.0.2'; do
    for _ in $(seq 11); do
        curl -s --noproxy '*' -o /dev/null -w '%{time_total}\n' "http://$HTTP/api/v1/sessions?limit=50&$filter"
    done | median | awk '{printf "  with %s (matches none, scans all): median %.2f ms\n", "'"$filter"'", $1 * 1000}'
done
stop
