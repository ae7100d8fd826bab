"""Medians and target ratios of bench/mailer-anchors.sh's mailer.tsv.

Usage: python3 bench/mailer_summary.py OUT_DIR/mailer.tsv > mailer.md
msgs/s is messages / wall time of the client process (as peers.sh measures its anchors);
"loop" is the client's own timing of its sending loop where it reports one.
"""
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(client, key):
    vals = [num(r[key]) for r in rows if r["client"] == client and r["rc"] == "0"]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f(v, nd=0):
    return "-" if v is None else f"{v:,.{nd}f}"


order = []
for r in rows:
    if r["client"] not in order:
        order.append(r["client"])
print("| client | server | conns | msgs | msgs/s (wall, median) | msgs/s (loop, median) | p50 ms | p90 ms | p99 ms | max ms "
      "| reconnects | delivered (each run) | load avg at start |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for c in order:
    g = [r for r in rows if r["client"] == c]
    # for our server the wall time includes starting it and the check: use the loop rate
    wall = med(c, "wall_msgs_per_s") if g[0]["server"] == "smtp-sink" else None
    print(f"| {c} | {g[0]['server']} | {g[0]['connections']} | {g[0]['messages']} | {f(wall)} | {f(med(c, 'loop_msgs_per_s'))} "
          f"| {f(med(c, 'p50_ms'), 3)} | {f(med(c, 'p90_ms'), 3)} | {f(med(c, 'p99_ms'), 3)} | {f(med(c, 'max_ms'), 1)} "
          f"| {f(med(c, 'reconnects'))} | {', '.join(r['delivered'] + ('' if r['rc'] == '0' else ' rc=' + r['rc']) for r in g)} "
          f"| {', '.join(r['load'] for r in g)} |")


def ratio(a, b, target, what):
    if a is None or b is None or not b:
        print(f"| {what} | - | {target} | - |")
        return
    r = a / b
    print(f"| {what} | {a:,.0f} / {b:,.0f} = **{r:.2f}x** | {target} | {'met' if r >= float(target.split('x')[0].lstrip('>= ')) else 'MISSED'} |")


print()
print("| target | measured (medians) | wanted | |")
print("|---|---|---|---|")
mailer = med("mailer", "wall_msgs_per_s")
ratio(mailer, med("smtp-source", "wall_msgs_per_s"), ">= 0.9x", "mailer / smtp-source, 1 connection")
ratio(mailer, med("smtplib", "wall_msgs_per_s"), ">= 1.5x", "mailer / Python smtplib, 1 connection (process wall)")
ratio(med("mailer", "loop_msgs_per_s"), med("smtplib", "loop_msgs_per_s"), ">= 1.5x", "mailer / Python smtplib, 1 connection (own loop timing)")
ratio(med("mailer-x4", "wall_msgs_per_s"), mailer, ">= 2.5x", "mailer 4 connections / 1 connection")
ratio(med("mailer-ours-cc35", "loop_msgs_per_s"), med("mailer-ours", "loop_msgs_per_s"), ">= 0.5x",
      "mailer under --close-chance 35 / no faults (mail-test-srv), reconnect base 1 ms")
ratio(med("mailer-ours-cc35-base0", "loop_msgs_per_s"), med("mailer-ours", "loop_msgs_per_s"), ">= 0.5x",
      "mailer under --close-chance 35 / no faults (mail-test-srv), reconnect base 0")
