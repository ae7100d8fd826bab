#!/usr/bin/env python3
"""Hostile clients against a release mail-test-srv, with the server's memory and slots
measured from /proc: the figures of docs/RELIABILITY.md ("SMTP, round two").

    cargo build --release -p mail-test-srv
    python3 bench/hostile.py [--bin target/release/mail-test-srv] [attack ...]

Attacks: envelope, inflight, auth, delay, hang, refuse (all by default). Each starts its own
server on 127.0.0.1 with port 0, prints one line of figures, and stops it. Loopback only.
"""

import argparse
import asyncio
import base64
import json
import os
import subprocess
import time
import urllib.request


class Server:
    def __init__(self, binary, *flags):
        self.proc = subprocess.Popen(
            [binary, "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready = self.proc.stdout.readline().split()
        fields = dict(f.split("=", 1) for f in ready[1:])
        self.smtp_host, self.smtp_port = fields["smtp"].rsplit(":", 1)
        self.http = fields["http"]

    def rss_mib(self, key="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stats(self):
        with urllib.request.urlopen(f"http://{self.http}/api/v1/stats") as response:
            return json.load(response)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


async def connect(server):
    reader, writer = await asyncio.open_connection(server.smtp_host, int(server.smtp_port))
    await reply(reader)
    return reader, writer


async def reply(reader):
    """One whole reply; its code, or None at EOF."""
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line[3:4] != b"-":
            return int(line[:3])


async def command(reader, writer, line):
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    return await reply(reader)


async def envelope(binary):
    """3,000 messages of 100 recipients with 250-byte addresses under a 1 MiB store cap;
    then 4 KB addresses, which RFC 5321 refuses."""
    server = Server(binary, "--max-stored-bytes", "1MiB", "--max-recipients", "100")
    before = server.rss_mib()
    reader, writer = await connect(server)
    await command(reader, writer, "EHLO attacker")
    recipients = [f"{'r' * 230}{i:03}@example.com" for i in range(100)]
    start = time.monotonic()
    for n in range(3000):
        batch = [f"MAIL FROM:<a{n}@example.com>"] + [f"RCPT TO:<{r}>" for r in recipients]
        batch += ["DATA"]
        writer.write(("\r\n".join(batch) + "\r\n").encode())
        for _ in batch:
            await reply(reader)
        writer.write(b"Subject: x\r\n\r\nm\r\n.\r\n")
        assert await reply(reader) == 250
    took = time.monotonic() - start
    refused = await command(reader, writer, f"RCPT TO:<{'r' * 4000}@example.com>")
    stats = server.stats()
    print(
        f"envelope: 3000 msgs x 100 rcpts of 250 B under --max-stored-bytes 1MiB: RSS "
        f"{before:.1f} -> {server.rss_mib():.1f} MiB (peak {server.rss_mib('VmHWM'):.1f}), "
        f"stored bytes {stats['stored']['bytes']}, kept {stats['stored']['messages']}, "
        f"evictions {stats['evictions']}, {took:.1f} s; "
        f"a 4 KB address gets {refused}"
    )
    server.stop()


async def inflight(binary, uploads=150, size=10 << 20):
    """150 unfinished 10 MB uploads under the default --max-inflight-bytes (256 MiB)."""
    server = Server(binary)
    chunk = (b"x" * 1022 + b"\r\n") * 1024
    outcomes = {}

    async def one():
        reader, writer = await connect(server)
        await command(reader, writer, "EHLO attacker")
        await command(reader, writer, "MAIL FROM:<a@example.com>")
        await command(reader, writer, "RCPT TO:<b@example.com>")
        code = await command(reader, writer, "DATA")
        if code == 354:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        return reader, writer, code

    held = await asyncio.gather(*(one() for _ in range(uploads)))
    peak_open = server.rss_mib("VmHWM")
    for reader, writer, code in held:
        if code == 354:
            writer.write(b".\r\n")
            await writer.drain()
            code = await reply(reader)
        outcomes[code] = outcomes.get(code, 0) + 1
        writer.close()
    print(
        f"inflight: {uploads} x {size >> 20} MB uploads held open: peak RSS {peak_open:.0f} MiB; "
        f"final replies {dict(sorted(outcomes.items()))}"
    )
    server.stop()


async def auth(binary, guesses=200_000):
    """Wrong AUTH PLAIN guesses pipelined on one connection, --auth user:password."""
    server = Server(binary, "--auth", "user:right")
    reader, writer = await connect(server)
    await command(reader, writer, "EHLO attacker")
    guess = base64.b64encode(b"\0user\0wrong").decode()
    start = time.monotonic()
    payload = f"AUTH PLAIN {guess}\r\n".encode() * 1000
    answered = closed_after = 0
    try:
        for _ in range(guesses // 1000):
            writer.write(payload)
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass
    while True:
        code = await reply(reader)
        if code is None:
            break
        answered += 1
        if code == 421:
            closed_after = answered - 1
    print(
        f"auth: {guesses} wrong guesses pipelined: {closed_after} answered 535, then 421 and "
        f"closed, in {time.monotonic() - start:.2f} s"
    )
    server.stop()


async def held_slots(binary, name, flags, clients=200, wait=1.0):
    server = Server(binary, *flags)
    conns = []
    for _ in range(clients):
        reader, writer = await connect(server)
        await command(reader, writer, "EHLO x")
        writer.write(b"MAIL FROM:<a@example.com>\r\n")
        await writer.drain()
        conns.append((reader, writer))
    await asyncio.sleep(0.3)
    open_before = server.stats()["connections"]["open"]
    if name == "delay":
        for _, writer in conns:
            writer.close()
    await asyncio.sleep(wait)
    open_after = server.stats()["connections"]["open"]
    print(f"{name}: {clients} sessions, open {open_before} -> {open_after} after {wait:.0f} s more")
    for _, writer in conns:
        writer.close()
    server.stop()


async def refuse(binary, flood=2000):
    """2,000 connections against --max-connections 10; the server's open fds."""
    server = Server(binary, "--max-connections", "10")
    keep = [await connect(server) for _ in range(10)]
    socks = []
    peak = server.fds()
    for i in range(flood):
        try:
            socks.append(await asyncio.open_connection(server.smtp_host, int(server.smtp_port)))
        except OSError:
            pass
        if i % 100 == 0:
            peak = max(peak, server.fds())
    peak = max(peak, server.fds())
    print(f"refuse: {flood} connections past --max-connections 10: server fds peak {peak}")
    for _, writer in socks + keep:
        writer.close()
    server.stop()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/mail-test-srv")
    parser.add_argument("attacks", nargs="*")
    args = parser.parse_args()
    chosen = args.attacks or ["envelope", "inflight", "auth", "delay", "hang", "refuse"]
    for attack in chosen:
        if attack == "envelope":
            await envelope(args.bin)
        elif attack == "inflight":
            await inflight(args.bin)
        elif attack == "auth":
            await auth(args.bin)
        elif attack == "delay":
            await held_slots(args.bin, "delay", ["--fault", "mail:delay=1h"], wait=1.0)
        elif attack == "hang":
            await held_slots(
                args.bin, "hang", ["--fault", "mail:hang", "--idle-timeout", "3s"], wait=4.0
            )
        elif attack == "refuse":
            await refuse(args.bin)
        else:
            raise SystemExit(f"unknown attack {attack!r}")


if __name__ == "__main__":
    asyncio.run(main())
