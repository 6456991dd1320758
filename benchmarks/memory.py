"""Calibrate the memory estimate: estimated vs measured peak RSS of short real training runs.

    python benchmarks/memory.py --data-dir ../shared/data            # all five cases, one at a time
    python benchmarks/memory.py lenet cnn1d --out memory.csv          # some cases; also write a CSV
    python benchmarks/memory.py lenet cnn1d --limit 128               # quicker: fewer examples per split

Each case is a plain `cnnzoo train` subprocess (one epoch on a few batches of real data, the
final evaluation included); its peak RSS is the child's ru_maxrss from os.wait4, and the estimate
is the one the run saved in its metrics.json (`memory_estimate_bytes`, made before any data was
read). The ratio is estimate / measured; docs/scaling.md promises 0.7 to 1.3 for these cases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOWERS_LIMIT = ["--set", "data.limit=64"]

# name -> (config, extra CLI arguments)
CASES = {
    "lenet": ("lenet", ["--set", "data.limit=2048"]),
    "cnn1d": ("cnn1d", ["--set", "data.limit=512"]),
    "alexnet_64": ("alexnet", ["--set", "input.shape=[64,64,3]", *FLOWERS_LIMIT]),
    "inception_v2_128": ("inception_v2", ["--set", "input.shape=[128,128,3]",
                                          "--set", "model.layers[-3].AveragePooling2D.pool_size=4", *FLOWERS_LIMIT]),
    "vgg16_64": ("vgg16", ["--set", "input.shape=[64,64,3]", *FLOWERS_LIMIT]),
}


def measure(name: str, runs_dir: Path, data_dir: str | None, limit: int | None = None) -> dict:
    config, extra = CASES[name]
    extra = extra + (["--set", f"data.limit={limit}"] if limit else [])  # the last --set wins
    command = [sys.executable, "-m", "cnnzoo", "train", str(ROOT / "configs" / f"{config}.yaml"), "--epochs", "1",
               "--runs-dir", str(runs_dir), *extra] + (["--data-dir", data_dir] if data_dir else [])
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: cnnzoo train failed with exit code {os.waitstatus_to_exitcode(status)}")
    run_dir = max(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    measured = usage.ru_maxrss * 1024
    return {"case": name, "command": " ".join(["cnnzoo", "train", f"configs/{config}.yaml", "--epochs", "1", *extra]),
            "params": metrics["params"], "precision": metrics["precision"],
            "estimate_mb": round(metrics["memory_estimate_bytes"] / 1e6),
            "measured_peak_rss_mb": round(measured / 1e6),
            "ratio": round(metrics["memory_estimate_bytes"] / measured, 3),
            "parts_mb": {k: round(v / 1e6) for k, v in metrics["memory_parts"].items()},
            "process_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    parser.add_argument("--data-dir", default=os.environ.get("CNNZOO_DATA_DIR"))
    parser.add_argument("--out", type=Path, help="also write the rows as CSV")
    parser.add_argument("--limit", type=int, help="data.limit for every case (default: each case's own)")
    opts = parser.parse_args()
    unknown = set(opts.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; known: {', '.join(CASES)}")
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for name in opts.cases or list(CASES):
            rows.append(measure(name, Path(runs) / name, opts.data_dir, opts.limit))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'case':18} {'params':>12} {'estimate MB':>12} {'peak RSS MB':>12} {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:18} {r['params']:>12,} {r['estimate_mb']:>12,} {r['measured_peak_rss_mb']:>12,} "
              f"{r['ratio']:>6.2f}")
    if opts.out:
        with open(opts.out, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=[k for k in rows[0] if k != "parts_mb"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    if any(not 0.7 <= r["ratio"] <= 1.3 for r in rows):
        raise SystemExit("some estimates are off by more than 30%")


if __name__ == "__main__":
    main()
