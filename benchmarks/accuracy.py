"""Train shipped configs on the real data and print their test accuracy (numbers for docs/models-and-results.md).

    python benchmarks/accuracy.py lenet_bn cnn1d_fcn        # configs by name
    python benchmarks/accuracy.py --list                    # what each run does
    python benchmarks/accuracy.py lenet_deep --seeds 42 1 2  # one run per seed, then mean +- std
    python benchmarks/accuracy.py resnet18_flowers --tta flip  # also the flip test-time augmentation
    python benchmarks/accuracy.py resnet18_flowers --tta flip --last  # and the last checkpoint's accuracy
    python benchmarks/accuracy.py --summarize a.jsonl b.jsonl  # the table and mean +- std of saved lines

Each run is a plain `cnnzoo train` subprocess; results are read back from the run folder's
metrics.json and printed as a table; --out FILE appends each run's JSON line as soon as it ends
(test accuracy, epochs, wall time, median seconds per epoch; benchmarks/size_ladder.py plots them).
Needs CNNZOO_DATA_DIR (or --data-dir) pointing at the datasets.
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

# name -> extra CLI arguments that define the benchmark run
RUNS = {
    "lenet": [],
    "lenet_bn": [],
    "cnn1d": [],
    "cnn1d_fcn": [],
    "alexnet_64": ["--set", "input.shape=[64,64,3]"],
    "inception_v2_96": ["--set", "input.shape=[96,96,3]", "--set", "model.layers[-3].AveragePooling2D.pool_size=3"],
    "inception_v2_gap_96": ["--set", "input.shape=[96,96,3]", "--epochs", "30"],
    "lenet5_1998": [],
    "lenet_deep": [],
    "resnet18_flowers": [],
    "resnet18_flowers_probe": ["--epochs", "4"],  # per-epoch time and the trend, not the result
    # the same recipe validated and checkpointed on an exponential moving average of the weights
    "resnet18_flowers_ema": ["--set", "train.optimizer={name: adamw, learning_rate: 0.002, weight_decay: 0.05, "
                                      "use_ema: true, ema_momentum: 0.995}"],
    "alexnet_bn": [],  # the full recipe of resnet18_flowers (170 epochs)
    "vgg11_gap": [],
    # the size ladder's lead (128 px) for what fits the hour there
    "resnet18_flowers_128_long": ["--set", "input.shape=[128,128,3]", "--epochs", "140"],
    # the families on one short schedule (30 epochs, 96x96): resnet18_flowers_96 is the ResNet's entry
    "alexnet_bn_30": ["--epochs", "30"],
    "vgg11_gap_30": ["--epochs", "30"],
    # the size ladder of the Flowers-17 ResNet on the same short schedule (input size only)
    **{f"resnet18_flowers_{px}": ["--set", f"input.shape=[{px},{px},3]", "--epochs", "30"]
       for px in (64, 96, 128, 160)},
}
CONFIG_OF = {"alexnet_64": "alexnet", "inception_v2_96": "inception_v2", "inception_v2_gap_96": "inception_v2_gap",
             "resnet18_flowers_probe": "resnet18_flowers",
             "resnet18_flowers_ema": "resnet18_flowers", "resnet18_flowers_128_long": "resnet18_flowers",
             "alexnet_bn_30": "alexnet_bn", "vgg11_gap_30": "vgg11_gap",
             **{f"resnet18_flowers_{px}": "resnet18_flowers" for px in (64, 96, 128, 160)}}


def run_one(name: str, runs_dir: Path, extra: list[str], data_dir: list[str], tta: str | None = None,
            last: bool = False) -> dict:
    config = ROOT / "configs" / f"{CONFIG_OF.get(name, name)}.yaml"
    before = set(runs_dir.glob("*")) if runs_dir.exists() else set()
    started = time.perf_counter()
    command = [sys.executable, "-m", "cnnzoo", "train", str(config), "--runs-dir", str(runs_dir), *RUNS[name], *extra,
               *data_dir]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    run_dir = max(set(runs_dir.glob("*")) - before, key=lambda p: p.stat().st_mtime)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    process_seconds = round(time.perf_counter() - started, 1)  # training only, not the views' eval
    views = {f"test_accuracy_{tta}": eval_accuracies(run_dir, data_dir, "best", tta)[tta]} if tta else {}
    if last:  # the end of the schedule, whatever the validation split chose as best
        ending = eval_accuracies(run_dir, data_dir, "last", tta or "none")
        views["test_accuracy_last"] = ending["none"]
        views |= {f"test_accuracy_last_{tta}": ending[tta]} if tta else {}
    return {"benchmark": name, "command": " ".join(["cnnzoo", "train", str(config.relative_to(ROOT)), *RUNS[name], *extra]),
            "run": run_dir.name, "test_accuracy": metrics["test"].get("accuracy"),
            "best_epoch": metrics["best_epoch"], "epochs": metrics["epochs_completed"],
            "process_seconds": process_seconds,
            "samples_per_second": metrics["samples_per_second"],
            "seconds_per_epoch": median_epoch_seconds(run_dir / "history.csv"), "seed": run_seed(run_dir)} | views


def run_seed(run_dir: Path) -> int:
    """The seed the run trained with: --seed, else its config's train.seed (default 42)."""
    from cnnzoo.config import load_config

    return load_config(run_dir / "config.yaml").train.seed


def eval_accuracies(run_dir: Path, data_dir: list[str], checkpoint: str, tta: str) -> dict[str, float | None]:
    """Test accuracy by view from one `cnnzoo eval --checkpoint C --tta T`: "none" (under a TTA, eval's
    single_view) and T; None for each (and the error shown) if the eval fails."""
    command = [sys.executable, "-m", "cnnzoo", "eval", str(run_dir), "--checkpoint", checkpoint, "--tta", tta,
               "--json", *data_dir]
    evaluated = subprocess.run(command, capture_output=True, text=True)
    if evaluated.returncode != 0:  # the training result is still worth its line
        print(evaluated.stdout[-2000:] + evaluated.stderr[-2000:], file=sys.stderr)
        return {"none": None, tta: None}
    report = json.loads(evaluated.stdout)
    return {"none": report.get("single_view", report["metrics"])["accuracy"], tta: report["metrics"]["accuracy"]}


def median_epoch_seconds(history: Path) -> float:
    """Median of history.csv's epoch_seconds (the first epoch also traces the graph)."""
    with history.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return round(statistics.median(float(r["epoch_seconds"]) for r in rows), 2)


def recipe(result: dict) -> str:
    """The run's command without its --seed: the runs of one recipe differ only by seed."""
    words = result.get("command", result["benchmark"]).split()
    return " ".join(w for i, w in enumerate(words) if w != "--seed" and (i == 0 or words[i - 1] != "--seed"))


def seed_summary(results: list[dict]) -> list[str]:
    """'name: mean +- std over N seeds (seed: accuracy, ...)' for each recipe run with more than one seed,
    for the single view and each test-time augmentation recorded. A seed of a recipe that ran twice
    counts once, by its later line; a view counts only the seeds that recorded it (each one is listed)."""
    last = {(recipe(r), str(r.get("seed"))): r for r in results}
    names = {}
    for r in results:
        names.setdefault(recipe(r), r["benchmark"])
    shared = {name for name in names.values() if list(names.values()).count(name) > 1}
    lines = []
    for group, name in names.items():
        runs = [r for (g, _), r in last.items() if g == group]
        label = f"{name} [{group}]" if name in shared else name
        for key in dict.fromkeys(k for r in runs for k in r if k.startswith("test_accuracy")):
            scored = [(str(r.get("seed")), r[key]) for r in runs if r.get(key) is not None]
            if len(scored) > 1:
                values = [accuracy for _, accuracy in scored]
                view = key.removeprefix("test_accuracy").lstrip("_")
                lines.append(f"{label}{' ' + view if view else ''}: {100 * statistics.mean(values):.2f}% "
                             f"+- {100 * statistics.stdev(values):.2f} over {len(values)} seeds "
                             f"({', '.join(f'{seed}: {100 * a:.2f}' for seed, a in scored)})")
    return lines


def print_results(results: list[dict]) -> None:
    """The table of runs, then the mean +- std of each benchmark run with several seeds."""
    print(f"\n{'benchmark':22} {'seed':>6} {'test acc':>9} {'best/epochs':>12} {'seconds':>9} {'samples/s':>10}")
    for r in results:
        acc = f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "-"
        best = f"{r['best_epoch']}/{r['epochs']}"
        views = "".join(f"  {key[len('test_accuracy_'):]} {value:.4f}" for key, value in r.items()
                        if key.startswith("test_accuracy_") and value is not None)
        print(f"{r['benchmark']:22} {r.get('seed', '-'):>6} {acc:>9} {best:>12} "
              f"{r['process_seconds']:>9} {r['samples_per_second']:>10}{views}")
    for line in seed_summary(results):
        print(line)


def read_results(paths: list[Path], parser: argparse.ArgumentParser, source: str = "--summarize ") -> list[dict]:
    """The JSON lines that --out wrote, files in the order given; a file or line that cannot be read
    is a one-line error naming it (after `source`, how the script's arguments call the files)."""
    results = []
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            parser.error(f"{source}{path}: cannot read it ({exc.strerror}); give a file that --out wrote")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError as exc:
                parser.error(f"{source}{path}:{number}: not a JSON line ({exc.msg}); --out writes one "
                             "object per line")
    if not results:
        parser.error(f"{source.strip() or 'results'}: no result lines in {', '.join(map(str, paths))}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(RUNS)}")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "benchmarks")
    parser.add_argument("--data-dir", help="the datasets' folder, for training and --tta (else CNNZOO_DATA_DIR)")
    parser.add_argument("--out", type=Path, help="append JSON lines here")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", help="train each benchmark once per seed (--seed)")
    parser.add_argument("--tta", choices=["flip"], help="also record the test accuracy under `cnnzoo eval --tta`")
    parser.add_argument("--last", action="store_true",
                        help="also record the last checkpoint's test accuracy (with --tta: under it too)")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSONL",
                        help="train nothing: print the table and mean +- std of lines --out wrote")
    args, extra = parser.parse_known_args()
    if args.summarize:
        if args.names:
            parser.error("--summarize trains nothing: give it result files, without benchmark names")
        print_results(read_results(args.summarize, parser))
        return
    if args.list or not args.names:
        for name, argv in RUNS.items():
            print(f"{name:18} configs/{CONFIG_OF.get(name, name)}.yaml {' '.join(argv)}")
        return
    unknown = [name for name in args.names if name not in RUNS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; --list shows them")
    seeds = [["--seed", str(s)] for s in args.seeds] if args.seeds else [[]]
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    results = []
    for name in args.names:
        for seed in seeds:
            results.append(run_one(name, args.runs_dir, extra + seed, data_dir, args.tta, args.last))
            if args.out:  # as each run ends, so an interrupted series keeps what finished
                with args.out.open("a") as f:
                    f.write(json.dumps(results[-1]) + "\n")
    print_results(results)


if __name__ == "__main__":
    main()
