#!/usr/bin/env bash
# mailer-anchors.sh - our mailer (`harness bench`, release build) next to the client anchors of
# peers.sh, in one loop so the ratios come from the same run: 2,000 x 1 KB on one connection to
# Postfix's smtp-sink from smtp-source, Python smtplib and our mailer; our mailer on 4
# connections (2,000 each); then our mailer against mail-test-srv without faults and with
# --close-chance 35 (reconnects; the exactly-once check by Message-ID over our HTTP API), with
# the bench's default 1 ms reconnect base and with 0 (no backoff sleeps).
#
# Usage: bench/mailer-anchors.sh   (called by bench/peers-with-ours.sh; runs alone as well)
# Knobs: REPS=3, OUT_DIR, N=2000 (messages per connection), NO_NETNS=1 (as peers.sh).
# Output: OUT_DIR/mailer.tsv (one row per run), OUT_DIR/mailer.md (medians and ratios).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/bench/peers}
HARNESS=$ROOT/target/release/harness

# Same isolation as peers.sh: a network namespace with only a loopback interface.
if [[ -z "${BENCH_NETNS:-}" && "${NO_NETNS:-0}" != 1 ]] && unshare -n true 2>/dev/null; then
    export BENCH_NETNS=1
    exec unshare -n "$0" "$@"
fi
[[ ${BENCH_NETNS:-0} == 1 ]] && ip link set lo up
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

REPS=${REPS:-3}; N=${N:-2000}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/mailer-anchors-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR/logs"
TSV=$OUT_DIR/mailer.tsv
SINK_USER=(); [[ $(id -u) == 0 ]] && SINK_USER=(-u nobody)   # smtp-sink refuses to run as root
[[ -x $HARNESS ]] || { echo "$HARNESS is missing: cargo build --release -p harness -p mail-test-srv" >&2; exit 2; }

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {   # port pid
    for _ in $(seq 200); do
        kill -0 "$2" 2>/dev/null || return 1
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]] && return 0
        sleep 0.05
    done
    return 1
}
stop_pid() { kill -TERM "$1" 2>/dev/null; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
             kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
now_ns() { date +%s%N; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }   # a key of the harness bench's result line

printf 'rep\tclient\tserver\tconnections\tmessages\twall_s\twall_msgs_per_s\tloop_msgs_per_s\tp50_ms\tp90_ms\tp99_ms\tmax_ms\treconnects\tdelivered\trc\tload\n' >"$TSV"

# one client run against a fresh smtp-sink: rep name connections messages command...
on_sink() {
    local rep=$1 name=$2 conns=$3 msgs=$4; shift 4
    local port pid slog clog t0 t1 rc got wall line
    port=$(free_port); slog="$OUT_DIR/logs/sink.$name.$rep.log"; clog="$OUT_DIR/logs/$name.$rep.log"
    smtp-sink "${SINK_USER[@]}" -c "127.0.0.1:$port" 1024 >"$slog" 2>&1 & pid=$!
    wait_listen "$port" "$pid" || { log "smtp-sink did not start"; stop_pid "$pid"; return; }
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now_ns)
    timeout 300 "${@//\{PORT\}/$port}" >"$clog" 2>&1; rc=$?
    t1=$(now_ns)
    stop_pid "$pid"
    got=$(tr '\r' '\n' <"$slog" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    line=$(grep '^bench ' "$clog" | tail -1)
    local loop; loop=$(kv msgs_per_s "$line"); [[ -z $loop ]] && loop=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' "$clog" | tail -1)
    printf '%s\t%s\tsmtp-sink\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\n' "$rep" "$name" "$conns" "$msgs" "$wall" \
        "$(awk -v n="$msgs" -v w="$wall" 'BEGIN{printf "%.0f", n/w}')" "${loop:-}" \
        "$(kv p50_ms "$line")" "$(kv p90_ms "$line")" "$(kv p99_ms "$line")" "$(kv max_ms "$line")" \
        "$(kv reconnects "$line")" "${got:-?}" "$msgs" "$rc" "$load" >>"$TSV"
    log "rep $rep $name x$conns -> smtp-sink: $msgs in ${wall}s, sink saw ${got:-?}, rc=$rc"
}

# our mailer against mail-test-srv (started by harness bench): rep name close-chance [flags]
on_ours() {
    local rep=$1 name=$2 chance=$3 clog line rc; shift 3
    clog="$OUT_DIR/logs/$name.$rep.log"
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    timeout 300 "$HARNESS" bench --no-build --connections 1 --messages "$N" --size 1024 \
        --close-chance "$chance" --seed "$rep" "$@" >"$clog" 2>&1; rc=$?
    line=$(grep '^bench ' "$clog" | tail -1)
    printf '%s\t%s\tmail-test-srv\t1\t%s\t%s\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\n' "$rep" "$name" "$N" "$(kv wall_s "$line")" \
        "$(kv msgs_per_s "$line")" "$(kv p50_ms "$line")" "$(kv p90_ms "$line")" "$(kv p99_ms "$line")" \
        "$(kv max_ms "$line")" "$(kv reconnects "$line")" "$(kv exactly_once "$line")" "$N" "$rc" "$load" >>"$TSV"
    log "rep $rep $name: $line (rc=$rc)"
}

FROM=a@example.test; TO=b@example.test
for rep in $(seq "$REPS"); do
    on_sink "$rep" smtp-source 1 "$N" smtp-source -d -M localhost -f "$FROM" -t "$TO" -s 1 -m "$N" -l 1024 '127.0.0.1:{PORT}'
    on_sink "$rep" smtplib 1 "$N" python3 "$PEERS_SRC/smtplib_client.py" 127.0.0.1 '{PORT}' "$N" 1024
    on_sink "$rep" mailer 1 "$N" "$HARNESS" bench --smtp '127.0.0.1:{PORT}' --connections 1 --messages "$N" --size 1024
    on_sink "$rep" mailer-x4 4 $((4 * N)) "$HARNESS" bench --smtp '127.0.0.1:{PORT}' --connections 4 --messages $((4 * N)) --size 1024
    on_ours "$rep" mailer-ours 0
    on_ours "$rep" mailer-ours-cc35 35
    # the same faults without backoff sleeps: what reconnecting itself costs
    on_ours "$rep" mailer-ours-cc35-base0 35 --reconnect-base 0ms
done
python3 "$ROOT/bench/mailer_summary.py" "$TSV" >"$OUT_DIR/mailer.md"
cat "$OUT_DIR/mailer.md"
