#!/usr/bin/env bash
# ours-count.sh PID - how many messages the mail-test-srv with this PID holds, for peers.sh's
# EXTRA_COUNT.  peers.sh gives us the server's SMTP port and PID but not its HTTP port, and the
# server is started with `--http 127.0.0.1:0` so that no port has to be guessed free in advance.
# Its stdout is peers.sh's log file, whose READY line (`READY smtp=.. http=.. seed=..`, the
# first line on stdout) names the HTTP address: read it through /proc/PID/fd/1.
set -euo pipefail
pid=${1:?usage: ours-count.sh PID}
http=$(grep -m1 -a '^READY ' "/proc/$pid/fd/1" | sed -n 's/.* http=\([^ ]*\).*/\1/p')
[[ -n $http ]] || { echo "no READY line from PID $pid" >&2; exit 1; }
curl -s --noproxy '*' --max-time 30 "http://$http/count"
