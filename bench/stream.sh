#!/usr/bin/env bash
# stream.sh - what the web page costs the server: workload (b) of the peer benchmark
# (smtp-source, 10 sessions, 20,000 x 1 KB messages) against a release mail-test-srv with 0 and
# with STREAMS open event streams (`curl -N .../api/v1/stream`, as five open pages would hold),
# alternating, REPS times; then, with 100,000 messages stored, the time of one page of the list
# (`GET /api/v1/messages?order=newest&limit=50`) with and without `q=`.
#
# Usage: cargo build --release -p mail-test-srv && bench/stream.sh
# Knobs: REPS=5 (runs per mode; 0 skips the first part), STREAMS=5, MESSAGES=100000 (second
# part; 0 skips it). Output: one line per run, then the medians. Loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRV=${SRV:-$ROOT/target/release/mail-test-srv}
REPS=${REPS:-5}
STREAMS=${STREAMS:-5}
MESSAGES=${MESSAGES:-100000}
SOURCE=(/usr/sbin/smtp-source -d -M localhost -f a@example.test -t b@example.test)
[[ -x $SRV ]] || { echo "build it first: cargo build --release -p mail-test-srv" >&2; exit 2; }
[[ -x ${SOURCE[0]} ]] || { echo "smtp-source is missing (.ci/install-deps installs postfix)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Starts the server with "$@"; sets PID, SMTP_PORT, HTTP.
start() {
    "$SRV" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --max-connections 20000 "$@" >"$work/out" 2>"$work/err" &
    PID=$!
    for _ in $(seq 1000); do grep -q '^READY' "$work/out" && break; sleep 0.02; done
    grep -q '^READY' "$work/out" || { echo "server did not start: $(tail -3 "$work/err")" >&2; exit 1; }
    SMTP_PORT=$(sed -n 's/^READY smtp=[^:]*:\([0-9]*\) .*/\1/p' "$work/out")
    HTTP=$(sed -n 's/^READY .* http=\([^ ]*\) .*/\1/p' "$work/out")
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }
# Server CPU time (user + system) in microseconds: steadier than msgs/s on a busy machine.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000000 / hz}' "/proc/$PID/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), git $(git -C "$ROOT" rev-parse --short HEAD)"
for rep in $(seq "$REPS"); do
    for streams in 0 "$STREAMS"; do
        start --seed 1 --fault mail:close:0%
        pids=()
        for i in $(seq "$streams"); do
            curl -s -N --noproxy '*' "http://$HTTP/api/v1/stream" >"$work/stream$i" &
            pids+=($!)
        done
        # Every page has its hello before the run starts.
        for i in $(seq "$streams"); do
            for _ in $(seq 100); do grep -q '^event: hello' "$work/stream$i" && break; sleep 0.02; done
        done
        cpu0=$(cpu_us)
        t0=$(date +%s.%N)
        "${SOURCE[@]}" -s 10 -m 20000 -l 1024 "127.0.0.1:$SMTP_PORT" >"$work/source" 2>&1 ||
            { echo "smtp-source failed: $(tail -1 "$work/source")" >&2; exit 1; }
        t1=$(date +%s.%N)
        cpu1=$(cpu_us)
        count=$(curl -s --noproxy '*' "http://$HTTP/count")
        # What the pages were sent (the last batch may still be on its way: a lower bound).
        sleep 0.2
        received=0
        for i in $(seq "$streams"); do
            n=$(grep -A1 '^event: messages' "$work/stream$i" | grep -o '"id":' | wc -l)
            received=$((received + n))
        done
        rate=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 20000 / (b - a)}')
        per_msg=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.1f", (b - a) / 20000}')
        echo "run $rep streams=$streams: $rate msgs/s, server CPU $per_msg us/msg, stored $count, items streamed $received" | tee -a "$work/runs"
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        stop
    done
done
if (( REPS > 0 )); then
    z=$(grep 'streams=0:' "$work/runs" | sed 's/.*: \([0-9]*\) msgs.*/\1/' | median)
    s=$(grep "streams=$STREAMS:" "$work/runs" | sed 's/.*: \([0-9]*\) msgs.*/\1/' | median)
    echo "median (b): 0 streams $z msgs/s, $STREAMS streams $s msgs/s, ratio $(awk -v a="$s" -v b="$z" 'BEGIN {printf "%.3f", a / b}')"
    cz=$(grep 'streams=0:' "$work/runs" | sed 's/.*CPU \([0-9.]*\) us.*/\1/' | median)
    cs=$(grep "streams=$STREAMS:" "$work/runs" | sed 's/.*CPU \([0-9.]*\) us.*/\1/' | median)
    echo "median server CPU per message: 0 streams $cz us, $STREAMS streams $cs us, ratio $(awk -v a="$cs" -v b="$cz" 'BEGIN {printf "%.3f", a / b}')"
fi

(( MESSAGES > 0 )) || exit 0
# The list with MESSAGES stored: one page of 50, newest first, plain and searched.
start
/usr/sbin/smtp-source -d -M localhost -f a@example.test -t b@example.test -s 10 -m "$MESSAGES" -l 1024 \
    "127.0.0.1:$SMTP_PORT" >/dev/null 2>&1
stored=$(curl -s --noproxy '*' "http://$HTTP/count")
echo "stored: $stored messages"
for query in 'order=newest&limit=50' 'order=newest&limit=50&offset=50000' \
    'order=newest&limit=50&q=B@EXAMPLE' 'order=newest&limit=50&q=nothing-matches' \
    'order=newest&limit=50&q=caf%C3%A9'; do
    curl -s --noproxy '*' -o /dev/null "http://$HTTP/api/v1/messages?$query"
    total=$(curl -s --noproxy '*' "http://$HTTP/api/v1/messages?$query" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    for _ in $(seq 21); do
        curl -s --noproxy '*' -o /dev/null -w '%{time_total}\n' "http://$HTTP/api/v1/messages?$query"
    done | median | awk -v q="$query" -v t="$total" '{printf "GET /api/v1/messages?%s (total %s): median %.2f ms over 21 requests\n", q, t, $1 * 1000}'
done
stop
