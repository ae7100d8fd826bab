#!/usr/bin/env python3
"""stream_latency.py - how long after its 250 a message is on the event stream.

Opens GET /api/v1/stream on a running mail-test-srv, sends N messages one at a time over
SMTP (smtplib; each subject numbered), spaced GAP seconds apart, and for each notes the time
from the 250 of its DATA to the `event: messages` frame that carries it. Prints the median,
the 90th percentile and the maximum. Loopback only.

Usage: bench/stream_latency.py SMTP_PORT HTTP_PORT [N=100] [GAP=0.1]
"""
import http.client
import json
import smtplib
import statistics
import sys
import threading
import time

smtp_port, http_port = int(sys.argv[1]), int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 100
gap = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1

arrived = {}
ready = threading.Event()


def listen():
    conn = http.client.HTTPConnection("127.0.0.1", http_port)
    conn.request("GET", "/api/v1/stream")
    response = conn.getresponse()
    name = None
    while True:
        line = response.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            now = time.monotonic()
            if name == "hello":
                ready.set()
            elif name == "messages":
                for item in json.loads(line[6:])["items"]:
                    arrived.setdefault(item["subject"], now)


threading.Thread(target=listen, daemon=True).start()
if not ready.wait(5):
    sys.exit("no hello on the stream")
sent = {}
with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
    for i in range(count):
        subject = f"latency {i}"
        body = f"Subject: {subject}\r\n\r\nx\r\n"
        smtp.sendmail("a@example.test", ["b@example.test"], body)
        sent[subject] = time.monotonic()  # just after the 250
        time.sleep(gap)
time.sleep(1)
lat = sorted((arrived[s] - t) * 1000 for s, t in sent.items() if s in arrived)
missing = count - len(lat)
print(f"{len(lat)} of {count} messages seen on the stream (missing {missing}); after the 250: "
      f"median {statistics.median(lat):.1f} ms, p90 {lat[int(len(lat) * 0.9) - 1]:.1f} ms, "
      f"max {lat[-1]:.1f} ms")
