"""How long `cnnzoo runs` takes on a folder of many runs.

Copies one real run folder's small files (config.yaml, metrics.json, history.csv; no checkpoints)
N times, with every 10th copy left without metrics.json (a run killed mid-training, read from its
history) and every 50th with a truncated metrics.json (damaged), then times `list_runs` over the
folder and the whole `cnnzoo runs` command in a fresh process (Python start-up included).

    python benchmarks/runs_table.py RUN_DIR [--runs 1000] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cnnzoo.runs.table import list_runs  # noqa: E402

SMALL_FILES = ("config.yaml", "metrics.json", "history.csv")


def make_runs(source: Path, runs_dir: Path, count: int) -> None:
    for i in range(count):
        dest = runs_dir / f"{source.name}-{i:05d}"
        dest.mkdir(parents=True)
        for name in SMALL_FILES:
            if (source / name).exists() and not (name == "metrics.json" and i % 10 == 9):
                shutil.copy2(source / name, dest / name)
        if i % 50 == 49:
            (dest / "metrics.json").write_text('{"config": ')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder to copy")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="cnnzoo-runs-bench-"))
    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    make_runs(args.run_dir, runs_dir, args.runs)
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        rows = list_runs(runs_dir)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnzoo", "runs", str(runs_dir), "--csv"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    command = time.perf_counter() - started
    statuses = {s: sum(r.status == s for r in rows) for s in sorted({r.status for r in rows})}
    print(f"runs: {len(rows)}  statuses: {statuses}")
    print(f"list_runs: median {statistics.median(seconds) * 1000:.0f} ms over {args.repeats} repeats "
          f"({statistics.median(seconds) / len(rows) * 1e6:.0f} us per run)")
    print(f"`cnnzoo runs --csv` in a fresh process: {command:.2f} s")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
