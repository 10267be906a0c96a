#!/usr/bin/env python3
"""Where a JIT'd guest spends its time: perf samples of generated code, by guest block.

    VESSEL_JIT_PERFMAP=1 vessel run --no-sandbox ... &      # writes /tmp/perf-PID.map
    perf record -F 2000 -p PID -o perf.data -- sleep 20
    scripts/jit-perf.py perf.data [/tmp/perf-PID.map] [--top N]

perf itself reads perf-PID.map only for anonymous memory; vessel's code cache is a memfd
(mapped twice, read-write and read-execute), so perf reports generated code as offsets in
"memfd:vessel-jit". The map's first line is the cache's start (the dispatch trampoline),
so an offset is the map address minus that start. Prints each block's share of the
samples (g_<guest pc>: VESSEL_JIT_DUMP=<pc> shows its code) and its hottest offsets
(host code offsets from the block's start), then the rest by symbol. Where one cache
offset held several blocks over the run (a cache flush), the last one translated is named.
Python 3 standard library and perf only.
"""

import argparse
import bisect
import collections
import glob
import os
import re
import subprocess
import sys


def read_map(path):
    entries = []
    base = None
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            addr, size = int(parts[0], 16), int(parts[1], 16)
            if base is None:
                base = addr
            entries.append((addr - base, size, parts[2]))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="perf.data")
    ap.add_argument("map", nargs="?", help="perf-PID.map (default: the newest in /tmp)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    mp = args.map
    if not mp:
        maps = glob.glob("/tmp/perf-*.map")
        if not maps:
            sys.exit("no /tmp/perf-*.map (run vessel with VESSEL_JIT_PERFMAP=1)")
        mp = max(maps, key=os.path.getmtime)
    entries = read_map(mp)
    order = sorted(range(len(entries)), key=lambda i: entries[i][0])
    starts = [entries[i][0] for i in order]
    try:
        out = subprocess.run(["perf", "report", "-i", args.data, "--no-children",
                              "--sort", "dso,sym", "--percent-limit", "0.01"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("perf report failed: %s" % e)
    share = collections.Counter()
    hot = collections.defaultdict(list)
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+.*?)\s+\[\.\]\s+(\S+)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        if "memfd" not in dso or not sym.startswith("0x"):
            share[sym] += pct
            continue
        off = int(sym, 16)
        k = bisect.bisect_right(starts, off) - 1
        best = None
        for j in range(k, max(-1, k - 64), -1):  # the newest entry covering off
            i = order[j]
            if entries[i][0] <= off < entries[i][0] + entries[i][1] and (best is None or i > best):
                best = i
        name = entries[best][2] if best is not None else "?"
        share[name] += pct
        hot[name].append((off - (entries[best][0] if best is not None else 0), pct))
    for name, pct in share.most_common(args.top):
        offs = sorted(hot.get(name, []), key=lambda x: -x[1])[:6]
        print("%6.2f%%  %-24s %s" % (pct, name, " ".join("+%x:%.1f" % o for o in offs)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
