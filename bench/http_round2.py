#!/usr/bin/env python3
"""HTTP, round two (docs/RELIABILITY.md): 300 silent HTTP connections, then 1,100 idle ones
and an SMTP client, DNS rebinding and a cross-site form POST, against a mail-test-srv binary
run under `ulimit -n 1024`. Usage: python3 bench/http_round2.py target/release/mail-test-srv"""
import os, re, socket, subprocess, sys, time, resource
try:  # the client side needs more than the server's 1,024
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
except (ValueError, OSError):
    pass
binary = sys.argv[1]
srv = subprocess.Popen(["sh", "-c", f"ulimit -n 1024; exec {binary} --smtp 127.0.0.1:0 --http 127.0.0.1:0 --seed 1"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = srv.stdout.readline()
smtp = re.search(r"smtp=([\d.]+):(\d+)", line); http = re.search(r"http=([\d.]+):(\d+)", line)
SMTP = (smtp.group(1), int(smtp.group(2))); HTTP = (http.group(1), int(http.group(2)))
def fds(): return len(os.listdir(f"/proc/{srv.pid}/fd"))
def closed(s):  # the server answered (a 503) or closed
    s.setblocking(False)
    try:
        return s.recv(4096) == b"" or True
    except BlockingIOError: return False
    except OSError: return True
print("fds at start", fds())
# 1. 300 silent connections
silent = [socket.create_connection(HTTP) for _ in range(300)]
t0 = time.time(); time.sleep(0.5)
print("300 silent: server fds", fds())
for wait in (5, 9, 12):
    time.sleep(max(0, wait - (time.time() - t0)))
    n = sum(closed(s) for s in silent)
    print(f"300 silent after {wait}s: {n} closed by the server")
for s in silent: s.close()
time.sleep(0.5)
# 2. 1,100 idle HTTP connections, then an SMTP client
idle = []
for _ in range(1100):
    try: idle.append(socket.create_connection(HTTP, timeout=2))
    except OSError as e: print("connect failed", e); break
time.sleep(0.5)
refused = sum(closed(s) for s in idle)
print(f"1,100 idle HTTP: {refused} answered 503/closed at once, server fds {fds()}")
t = time.time()
try:
    c = socket.create_connection(SMTP, timeout=5); greet = c.recv(100); c.close()
except OSError as e:
    greet = repr(e).encode()
print(f"SMTP greeting with the flood open: {greet[:3]!r} in {(time.time()-t)*1000:.1f} ms")
for s in idle: s.close()
time.sleep(0.5)
def req(raw):
    s = socket.create_connection(HTTP); s.sendall(raw.encode()); data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    return data.split(b"\r\n")[0].decode(), data.split(b"\r\n\r\n", 1)[1][:160]
H = f"{HTTP[0]}:{HTTP[1]}"
print("rebinding:", req(f"GET /api/v1/messages HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"))
print("plain curl /count:", req(f"GET /count HTTP/1.1\r\nHost: {H}\r\nUser-Agent: curl/8\r\nAccept: */*\r\nConnection: close\r\n\r\n"))
form = "x=1"
print("cross-site form POST /api/v1/reset:", req(f"POST /api/v1/reset HTTP/1.1\r\nHost: {H}\r\nOrigin: http://attacker.example\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{form}"))
print("form POST without Origin:", req(f"POST /api/v1/reset HTTP/1.1\r\nHost: {H}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{form}"))
print("curl -X POST /clear:", req(f"POST /clear HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n"))
srv.terminate(); srv.wait()
