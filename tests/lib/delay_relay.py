#!/usr/bin/env python3
"""A UDP relay that delays every datagram, both ways: the added delay of a link, without netem
(which this kernel lacks). Clients send to LISTEN; each client gets a socket of its own towards
TARGET, so the target sees one address per client and answers reach the right one.

    delay_relay.py LISTEN_PORT TARGET_PORT DELAY_MS LIFETIME_S

Loopback only (testing.md, the network rule). It exits after LIFETIME_S whatever happens.
"""
import heapq
import select
import socket
import sys
import time

listen_port, target_port, delay_ms, lifetime = (int(a) for a in sys.argv[1:5])
delay = delay_ms / 1000.0
target = ("127.0.0.1", target_port)
end = time.monotonic() + lifetime

front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(("127.0.0.1", listen_port))
upstream = {}   # client address -> its socket towards the target
client_of = {}  # that socket -> the client address
queue = []      # (when, sequence, socket, data, address): sends that are due later
seq = 0
print("ready", flush=True)

while time.monotonic() < end:
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, sock, data, addr = heapq.heappop(queue)
        sock.sendto(data, addr)
    wait = min(queue[0][0] - now if queue else 0.05, 0.05)
    readable, _, _ = select.select([front, *client_of], [], [], max(wait, 0))
    for sock in readable:
        data, addr = sock.recvfrom(65536)
        seq += 1
        when = time.monotonic() + delay
        if sock is front:
            up = upstream.get(addr)
            if up is None:
                up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.bind(("127.0.0.1", 0))
                upstream[addr] = up
                client_of[up] = addr
            heapq.heappush(queue, (when, seq, up, data, target))
        else:
            heapq.heappush(queue, (when, seq, front, data, client_of[sock]))
