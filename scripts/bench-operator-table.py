#!/usr/bin/env python3
"""The table by N of `make bench-operator` with several BENCH_OBJECTS: one JSON line per run in,
figures per run and the calls of one full resync (every object checked once) by operation out."""
import json
import re
import sys

READ = re.compile(r"/(Describe|Get|List|BatchGet)")
runs = sorted((json.loads(line) for line in open(sys.argv[1]) if line.strip()), key=lambda r: r["objects"])
if not runs:
    sys.exit("no runs")


def full_resync(run):
    """Calls of one full resync by operation: the calls per object resync times the objects."""
    per_resync = max(run["resyncs"], 1)
    return {op: calls / per_resync * run["objects"] for op, calls in run["resync_calls"].items()}


header = "| | " + " | ".join(f"N = {r['objects']:,}" for r in runs) + " |"
print(header)
print("|---" * (len(runs) + 1) + "|")
rows = [
    ("all Ready (s)", lambda r: f"{r['ready_seconds']:.1f}"),
    ("AWS calls per object on create", lambda r: f"{r['create_calls'] / r['objects']:.1f}"),
    ("reads per full resync", lambda r: f"{sum(v for op, v in full_resync(r).items() if READ.search(op)):,.0f}"),
    (
        "reads per object per resync",
        lambda r: f"{sum(v for op, v in full_resync(r).items() if READ.search(op)) / r['objects']:.2f}",
    ),
    (
        # 1.00 when every object is resynced once a period; less when the resyncs fall behind.
        "resyncs per object per period",
        lambda r: f"{r['resyncs'] / r['objects'] / (r['window_seconds'] / r['resync_seconds']):.2f}"
        if "window_seconds" in r
        else "",
    ),
    (
        "slowest listing (s)",
        lambda r: "{} {:.1f}".format(*max(r["listing_seconds"].items(), key=lambda kv: kv[1]))
        if r.get("listing_seconds")
        else "",
    ),
    ("writes per full resync", lambda r: f"{sum(v for op, v in full_resync(r).items() if not READ.search(op)):,.0f}"),
    (
        "anonymous RSS per object (KiB)",
        lambda r: f"{(r['anonymous_kib']['after'] - r['anonymous_kib']['idle']) / r['objects']:.1f}",
    ),
    ("anonymous / code RSS after (MiB)", lambda r: f"{r['anonymous_kib']['after'] / 1024:.0f} / {r['code_kib'] / 1024:.0f}"),
]
for name, cell in rows:
    print(f"| {name} | " + " | ".join(cell(r) for r in runs) + " |")

print()
print("Calls of one full resync by operation:")
print(header)
print("|---" * (len(runs) + 1) + "|")
operations = sorted({op for r in runs for op in r["resync_calls"]})
for op in operations:
    print(f"| {op} | " + " | ".join(f"{full_resync(r).get(op, 0):,.0f}" for r in runs) + " |")
