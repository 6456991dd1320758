"""Run a time-series recipe over the datasets of a local UCR (or UEA) archive folder, untuned, and write
one CSV in the layout of the dl-4-tsc results files, to set beside the published table.

    python benchmarks/ucr_archive.py ../shared/data/ucr                      # every dataset in the folder
    python benchmarks/ucr_archive.py ../shared/data/ucr --datasets ECG200 --seeds 0 1 2
    python benchmarks/ucr_archive.py ARCHIVE --config cnn1d_resnet_wang --epochs 1500 --out resnet.csv
    python benchmarks/ucr_archive.py --summarize results.csv                  # mean +- std per dataset

A dataset is a sub-folder `<Name>/` holding `<Name>_TRAIN.tsv` and `_TEST.tsv` (UCR 2018) or
`<Name>_TRAIN.ts` and `_TEST.ts` (UEA). Each run is a plain `cnnzoo train <config> --set data.name=<Name>`
subprocess (the config's `input.shape: auto` and `units: auto` take the length, channels and classes
from the data); the row comes from the run's metrics.json and eval.json: the classifier, archive and
dataset names, the seed (dl-4-tsc's iteration), test accuracy, macro precision and recall, the epochs
run, the seconds, and whether the BatchNormalization check warned. Rows are appended as runs end, so an
interrupted benchmark keeps what it measured. The mean and standard deviation per dataset are printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["classifier_name", "archive_name", "dataset_name", "iteration", "accuracy", "precision", "recall",
           "epochs", "duration", "batchnorm_warning"]


def datasets_in(archive: Path) -> list[tuple[str, str]]:
    """(name, kind) of every dataset folder of the archive, sorted: kind 'ucr' (.tsv) or 'uea' (.ts)."""
    found = []
    for folder in sorted(p for p in archive.iterdir() if p.is_dir()):
        for kind, suffix in (("ucr", "tsv"), ("uea", "ts")):
            if all((folder / f"{folder.name}_{part}.{suffix}").is_file() for part in ("TRAIN", "TEST")):
                found.append((folder.name, kind))
                break
    return found


def run_one(config: str, name: str, kind: str, archive: Path, seed: int, epochs: int | None, runs: Path) -> dict:
    runs.mkdir(parents=True, exist_ok=True)
    before = set(runs.iterdir())
    command = [sys.executable, "-m", "cnnzoo", "train", config, "--runs-dir", str(runs), "--seed", str(seed),
               "--set", f"data.dataset={kind}", "--set", f"data.name={name}", "--set", f"data.path={archive}"]
    command += ["--epochs", str(epochs)] if epochs else []
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{name} (seed {seed}): cnnzoo train exited {done.returncode}")
    (run,) = set(runs.iterdir()) - before
    metrics = json.loads((run / "metrics.json").read_text())
    evaluated = subprocess.run([sys.executable, "-m", "cnnzoo", "eval", str(run), "--json"], cwd=ROOT,
                               capture_output=True, text=True, check=True)
    averages = json.loads(evaluated.stdout).get("averages", {})
    return {"classifier_name": config, "archive_name": archive.name, "dataset_name": name, "iteration": seed,
            "accuracy": round(metrics["test"]["accuracy"], 4), "precision": round(averages.get("macro_precision", 0), 4),
            "recall": round(averages.get("macro_recall", 0), 4), "epochs": metrics["epochs_completed"],
            "duration": round(seconds, 1), "batchnorm_warning": bool((metrics.get("batchnorm") or {}).get("trapped"))}


def append(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def summarize(rows: list[dict]) -> None:
    by_dataset: dict[tuple, list[dict]] = {}
    for row in rows:
        by_dataset.setdefault((row["classifier_name"], row["dataset_name"]), []).append(row)
    print(f"{'classifier':<20} {'dataset':<24} {'runs':>4} {'accuracy':>16} {'epochs':>7} {'seconds':>8} BN warned")
    for (classifier, dataset), group in sorted(by_dataset.items()):
        accuracy = [float(r["accuracy"]) for r in group]
        spread = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
        warned = sum(str(r["batchnorm_warning"]) == "True" for r in group)
        print(f"{classifier:<20} {dataset:<24} {len(group):>4} {statistics.mean(accuracy):>8.2%} +- {spread:.2%} "
              f"{statistics.mean(float(r['epochs']) for r in group):>7.0f} "
              f"{statistics.mean(float(r['duration']) for r in group):>8.0f} {warned}/{len(group)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", type=Path, help="the archive folder (one sub-folder per dataset)")
    parser.add_argument("--config", default="cnn1d_fcn_wang", help="the recipe (a shipped config name or a file)")
    parser.add_argument("--datasets", nargs="*", help="only these datasets of the archive")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="one run per seed")
    parser.add_argument("--epochs", type=int, help="override the config's epochs (a quick look, not the recipe)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "ucr_archive")
    parser.add_argument("--out", type=Path, default=Path("ucr_archive_results.csv"))
    parser.add_argument("--summarize", type=Path, help="print the summary of a results CSV and exit")
    args = parser.parse_args()
    if args.summarize:
        with open(args.summarize, newline="") as handle:
            summarize(list(csv.DictReader(handle)))
        return
    if args.archive is None:
        parser.error("give the archive folder (or --summarize FILE)")
    found = [(n, k) for n, k in datasets_in(args.archive) if not args.datasets or n in args.datasets]
    if not found:
        raise SystemExit(f"no UCR/UEA dataset folders in {args.archive} (or none of --datasets)")
    rows = []
    for name, kind in found:
        for seed in args.seeds:
            row = run_one(args.config, name, kind, args.archive.resolve(), seed, args.epochs, args.runs_dir)
            append(args.out, row)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summarize(rows)


if __name__ == "__main__":
    main()
