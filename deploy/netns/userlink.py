#!/usr/bin/env python3
"""Userspace links with delay and loss, for kernels without sch_netem.

netns.sh starts this (`up --links user`) inside the federation's switch namespace.
For each node it creates a pair of TAP devices there: one the script moves into the
node's namespace as eth0, one it attaches to the switch's bridge as p<i>. This
process carries every Ethernet frame between the two ends of each pair, and can hold
each frame back by a fixed delay or drop it with a given probability, once per
direction, which is what `tc netem delay D loss P` on both ends of a veth does.

Settings per node come from the file CTL/n<i>: `delay_ms loss_percent` (written by
`netns.sh netem I ...`; no file, or `0 0`, means a plain link). They are re-read when
the file changes. Frames keep their order (no jitter), except that lowering a delay
lets new frames pass those still waiting. Like netem's default limit,
at most 1000 frames per direction wait in the delay line; more are dropped.

Usage: userlink.py CTL READY N
  creates e1/p1 .. eN/pN in the current namespace, writes READY when they exist,
  then forwards until SIGTERM.
       userlink.py --probe
  exits 0 if a TAP device can be made here.
"""

import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
LIMIT = 1000


def tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def read_settings(path):
    """(delay seconds, loss probability) from CTL/n<i>; a plain link if absent."""
    try:
        with open(path, encoding="ascii") as f:
            delay_ms, loss_pct = f.read().split()
        return float(delay_ms) / 1000.0, float(loss_pct) / 100.0
    except FileNotFoundError:
        return 0.0, 0.0
    except (OSError, ValueError) as e:
        print(f"userlink: ignoring unreadable {path}: {e}", file=sys.stderr, flush=True)
        return None


def main():
    if sys.argv[1:] == ["--probe"]:
        os.close(tap("wlprobe0"))
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ctl, ready, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # fd -> (node, fd to write to); per node: settings, settings file mtime.
    route = {}
    for i in range(1, n + 1):
        e, p = tap(f"e{i}"), tap(f"p{i}")
        route[e] = (i, p)
        route[p] = (i, e)
    settings = {i: (0.0, 0.0) for i in range(1, n + 1)}
    mtimes = {i: None for i in range(1, n + 1)}
    with open(ready, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    print(f"userlink: forwarding {n} links", file=sys.stderr, flush=True)

    count = {"passed": 0, "dropped": 0}
    try:
        forward(ctl, route, settings, mtimes, count)
    finally:
        print(f"userlink: {count['passed']} frames passed, {count['dropped']} dropped",
              file=sys.stderr, flush=True)


def forward(ctl, route, settings, mtimes, count):
    line = []  # heap of (due, seq, out fd, frame)
    queued = {fd: 0 for fd in route}
    seq = 0
    next_reload = 0.0
    while True:
        now = time.monotonic()
        if now >= next_reload:
            next_reload = now + 0.1
            for i in settings:
                path = os.path.join(ctl, f"n{i}")
                try:
                    m = os.stat(path).st_mtime_ns
                except FileNotFoundError:
                    m = None
                if m != mtimes[i]:
                    mtimes[i] = m
                    s = read_settings(path)
                    if s is not None:
                        settings[i] = s
                        print(f"userlink: node {i}: delay {s[0] * 1000:g} ms, loss {s[1] * 100:g} %",
                              file=sys.stderr, flush=True)
        timeout = 0.1
        if line:
            timeout = min(timeout, max(0.0, line[0][0] - now))
        readable, _, _ = select.select(list(route), [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            node, out = route[fd]
            delay, loss = settings[node]
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if not frame:
                    break
                if loss > 0.0 and random.random() < loss:
                    count["dropped"] += 1
                    continue
                if delay <= 0.0:
                    send(out, frame)
                    count["passed"] += 1
                elif queued[out] < LIMIT:
                    seq += 1
                    queued[out] += 1
                    heapq.heappush(line, (now + delay, seq, out, frame))
                else:
                    count["dropped"] += 1
        while line and line[0][0] <= now:
            _, _, out, frame = heapq.heappop(line)
            queued[out] -= 1
            send(out, frame)
            count["passed"] += 1


def send(fd, frame):
    try:
        os.write(fd, frame)
    except OSError:
        # The far end is down (`netns.sh cut`) or its queue is full: the frame is lost,
        # as on a wire.
        pass


if __name__ == "__main__":
    main()
