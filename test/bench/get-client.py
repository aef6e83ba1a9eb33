#!/usr/bin/python3
"""One D-Bus client doing sequential Properties.Get calls against virtnetd, through libdbus (the
reference D-Bus library, via dbus-python: what a desktop tool written in Python uses). Used by
test/bench/daemon-section.ts for the "calls/s from one client" figure, so that the client's own cost
is a C library's, not node + dbus-next's.

  get-client.py ADDRESS PATH INTERFACE PROPERTY ROUNDS CALLS

Prints one JSON line per round: {"rate": calls per second, "p50": median latency in ms}.
"""
import json
import sys
import time

import dbus

address, path, iface, prop = sys.argv[1:5]
rounds, calls = int(sys.argv[5]), int(sys.argv[6])
bus = dbus.bus.BusConnection(address)
props = dbus.Interface(
    bus.get_object('org.virtnet.network1', path, introspect=False), 'org.freedesktop.DBus.Properties'
)
for _ in range(300):  # warm-up
    props.Get(iface, prop)
for _ in range(rounds):
    lat = []
    t0 = time.perf_counter()
    for _ in range(calls):
        s = time.perf_counter()
        props.Get(iface, prop)
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({'rate': calls / total, 'p50': lat[len(lat) // 2] * 1000}), flush=True)
