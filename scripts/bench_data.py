#!/usr/bin/env python
"""Benchmark the data layer: the synthetic generator (1,000,000 hourly bars for 3 correlated pairs)
and the ECB source (1999 to today for 10 pairs).

Prints wall seconds (best and median of --repeat runs, each in a fresh process so
peak memory is the run's own) and peak memory: the process's peak resident set
(ru_maxrss, includes the interpreter and imported libraries) and the peak of Python
allocations traced during generation. Target on 2 cores: <= 5 s and <= 500 MB. The ECB
line loads the whole history for 10 pairs in a fresh process (reading the zip included),
target <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, {repo!r})
import numpy as np
from simulator.synthetic.generator import SyntheticConfig, generate_market
config = SyntheticConfig.from_yaml({config!r})
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tracemalloc.start()
t0 = time.perf_counter()
out = generate_market(config, {bars}, rng=np.random.default_rng({seed}))
seconds = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=seconds, peak_rss_mb=peak, baseline_rss_mb=baseline, traced_peak_mb=traced,
                      rows=len(out.market), pairs=len(out.market.symbols))))
"""


ECB_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from simulator.data.ecb import load_ecb
t0 = time.perf_counter()
market = load_ecb({symbols!r})
seconds = time.perf_counter() - t0
print(json.dumps(dict(seconds=seconds, bars=len(market), pairs=len(market.symbols),
                      first=str(market.index[0].date()), last=str(market.index[-1].date()))))
"""
ECB_PAIRS = ["EURUSD", "USDJPY", "GBPUSD", "EURCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY", "EURSEK"]


def bench_ecb(repeat: int) -> bool:
    """Load 1999-today for 10 pairs from the ECB source, each run in a fresh process; prints the line."""
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", ECB_CHILD.format(repo=str(REPO), symbols=ECB_PAIRS)],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    secs = [r["seconds"] for r in runs]
    r = runs[0]
    print(f"  ecb load: {r['pairs']} pairs x {r['bars']:,} daily bars ({r['first']} .. {r['last']}): "
          f"best {min(secs):.2f} s  median {statistics.median(secs):.2f} s  (target <= 2)")
    return statistics.median(secs) <= 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", default=str(REPO / "simulator" / "data" / "synthetic_g10.yaml"))
    args = parser.parse_args()

    results = []
    for i in range(args.repeat):
        code = CHILD.format(repo=str(REPO), config=args.config, bars=args.bars, seed=i)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    secs = [r["seconds"] for r in results]
    peak = max(r["peak_rss_mb"] for r in results)
    traced = max(r["traced_peak_mb"] for r in results)
    base = min(r["baseline_rss_mb"] for r in results)
    print(f"bench_data: {results[0]['rows']:,} bars x {results[0]['pairs']} pairs, {os.cpu_count()} cores")
    print(f"  generate seconds: best {min(secs):.2f}  median {statistics.median(secs):.2f}  (target <= 5)")
    print(f"  peak RSS: {peak:.0f} MB (after imports {base:.0f} MB)  (target <= 500)")
    print(f"  peak traced allocations during generation: {traced:.0f} MB")
    ok = statistics.median(secs) <= 5.0 and peak <= 500.0
    ok = bench_ecb(args.repeat) and ok
    print("  targets met" if ok else "  TARGET MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
