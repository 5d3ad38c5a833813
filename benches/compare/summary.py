#!/usr/bin/env python3
"""Prints the pipe benchmark results from target/criterion as tables.

Messages per second (millions) for 16 B and 1 KiB messages, GB/s (10^9
bytes per second) of payload from 64 KiB up, from criterion's median time
per batch. A figure marked '~' had a 95% confidence interval wider than
+-5% of its median: noisy, worth repeating (run.sh FILTER re-runs a part).

`summary.py` prints the whole-batch table; `summary.py sock` the
socket-sized delivery tables (one per direction and kind).
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target", "criterion")
LIBRARIES = ["wscore", "wscore_copy", "wscore_owned", "tungstenite", "fastwebsockets", "tokio-websockets"]
VARIANTS = ["wscore_retain1m"]  # only measured with WSCORE_VARIANTS=1
PEERS = ["tungstenite", "fastwebsockets", "tokio-websockets"]
SHAPES = ["binary_16", "text_16", "binary_1024", "text_1024", "binary_65536", "text_65536"]


SOCK_LIBRARIES = ["wscore_copy", "wscore_shared", "tungstenite", "fastwebsockets", "tokio-websockets"]
SOCK_SIZES = [16, 1024, 65536, 1048576]
DELIVERIES = ["whole", "16k", "64k", "random"]


def load(shape, library, delivery=None):
    base = os.path.join(ROOT, shape, library, *([delivery] if delivery else []), "new")
    try:
        with open(os.path.join(base, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(base, "estimates.json")) as f:
            est = json.load(f)
    except FileNotFoundError:
        return None
    median = est["median"]
    ns = median["point_estimate"]
    ci = median["confidence_interval"]
    noisy = (ci["upper_bound"] - ci["lower_bound"]) / 2 > 0.05 * ns
    throughput = bench["throughput"]
    if "Bytes" in throughput:
        return throughput["Bytes"] / ns, "GB/s", noisy  # bytes/ns = GB/s
    return throughput["Elements"] / ns * 1e3, "M msg/s", noisy  # msgs/ns*1e3 = M msgs/s


def table(header, rows):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 1) + (":" if i > 1 else "-") for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))


def sock():
    """One table per direction and kind: rows are size x delivery."""
    printed = False
    for direction, what in [("c2s", "client → server (the server reads)"), ("s2c", "server → client (the client reads)")]:
        for kind in ["binary", "dense"]:
            header = ["size", "reads"] + SOCK_LIBRARIES + ["best wscore / best peer"]
            rows = []
            for size in SOCK_SIZES:
                shape = f"sock_{direction}_{kind}_{size}"
                for delivery in DELIVERIES:
                    cells = {lib: load(shape, lib, delivery) for lib in SOCK_LIBRARIES}
                    if not any(cells.values()):
                        continue
                    unit = next(c[1] for c in cells.values() if c)
                    row = [f"{size} B ({unit})", delivery]
                    for lib in SOCK_LIBRARIES:
                        c = cells[lib]
                        row.append("-" if c is None else f"{c[0]:.2f}{'~' if c[2] else ''}")
                    peers = [(cells[p][0], p) for p in PEERS if cells[p]]
                    ours = [cells[w][0] for w in ("wscore_copy", "wscore_shared") if cells[w]]
                    if peers and ours:
                        best, who = max(peers)
                        row.append(f"{max(ours) / best:.2f}x ({who})")
                    else:
                        row.append("-")
                    rows.append(row)
            if rows:
                printed = True
                print(f"**{what}, {'binary' if kind == 'binary' else 'dense multi-byte text'}**")
                print()
                table(header, rows)
                print()
    if not printed:
        sys.exit("no socket-sized results under target/criterion: run `PIPE_PART=sock cargo bench --bench pipe` first")
    print("Higher is better. M msg/s for 16 B and 1 KiB, GB/s of payload from 64 KiB. wscore's core as an adapter")
    print("drives it (output copied to the wire, receive per read, borrowed messages), sending with `send` of a")
    print("borrowed Message (wscore_copy) or `send_owned` of a shared OwnedMessage (wscore_shared).")
    print("'~': median's 95% confidence interval wider than +-5%.")


def main():
    if sys.argv[1:] == ["sock"]:
        return sock()
    # Variants only when asked for (their results may be left from an older run).
    variants = VARIANTS if os.environ.get("WSCORE_VARIANTS") else []
    shown = LIBRARIES + [v for v in variants if any(load(s, v) for s in SHAPES)]
    header = ["shape", "unit"] + shown + ["wscore / best peer", "wscore_copy / best", "owned / copy"]
    rows = []
    for shape in SHAPES:
        cells = {lib: load(shape, lib) for lib in shown}
        if not any(cells.values()):
            continue
        unit = next(c[1] for c in cells.values() if c)
        row = [shape, unit]
        for lib in shown:
            c = cells[lib]
            row.append("-" if c is None else f"{c[0]:.2f}{'~' if c[2] else ''}")
        peers = [(cells[p][0], p) for p in PEERS if cells[p]]
        best, who = max(peers) if peers else (None, None)
        for lib in ["wscore", "wscore_copy"]:
            if cells[lib] and best:
                row.append(f"{cells[lib][0] / best:.2f}x" + (f" ({who})" if lib == "wscore" else ""))
            else:
                row.append("-")
        # The owned path against the borrowing path it is built like.
        owned, copy = cells.get("wscore_owned"), cells.get("wscore_copy")
        row.append(f"{owned[0] / copy[0]:.2f}x" if owned and copy else "-")
        rows.append(row)
    if not rows:
        sys.exit("no results under target/criterion: run `cargo bench --bench pipe` first")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 1) + (":" if i > 1 else "-") for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))
    print()
    print("Higher is better. M msg/s: millions of messages per second; GB/s: payload bytes, 10^9/s.")
    print("wscore = send + transmit_into + receive; wscore_copy = the same with the client's output")
    print("copied from poll_transmit like the other libraries' socket writes; wscore_owned = wscore_copy")
    print("with each message taken owned (poll_owned: split off the receive buffer, as a Stream item is).")
    if variants:
        print("wscore_retain1m = wscore with Config::retained_buffer_capacity = 1 MiB (default 4 KiB).")
    print("'~': median's 95% confidence interval wider than +-5%; re-run that group.")


if __name__ == "__main__":
    main()
