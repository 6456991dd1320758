"""Plot a size ladder: test accuracy and seconds per epoch against the input size, over seeds.

    python benchmarks/accuracy.py resnet18_flowers_64 resnet18_flowers_96 resnet18_flowers_128 \\
        --seeds 42 1 2 --out ladder.jsonl
    python benchmarks/size_ladder.py ladder.jsonl [more.jsonl ...] docs/size_ladder.png

Reads accuracy.py's JSON lines (files in the order given; a file or line that cannot be read is a
one-line error), keeps those whose benchmark name ends in `_<pixels>` and counts each seed of a size
once, by its later line (lines from before accuracy.py recorded seconds per epoch are skipped). The
lines of one size must share one recipe (the command without --seed): a 4-epoch probe is not a seed
of a 30-epoch run, so mixed recipes are an error. Prints one row per size, the mean +- std (sample
std) of the seeds' test accuracies with each seed's value, and draws two panels side by side: the
mean accuracy with the seeds' spread as error bars and each seed as a dot, and the mean of the
seeds' median seconds per epoch.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from accuracy import read_results, recipe  # noqa: E402  (benchmarks/ is the script's own folder)


def ladder_rows(results: list[dict], prefix: str) -> list[dict]:
    """One row per input size, sorted by size: {px, seeds, accuracies, mean, std, seconds_per_epoch,
    epochs, recipes}; `recipes` holds more than one command when the lines of a size mix recipes."""
    by_size_and_seed = {}
    for result in results:
        match = re.fullmatch(rf"{re.escape(prefix)}_(\d+)", result.get("benchmark", ""))
        if match and result.get("test_accuracy") is not None and "seconds_per_epoch" in result:
            by_size_and_seed[int(match.group(1)), str(result.get("seed"))] = result
    rows = []
    for px in sorted({px for px, _ in by_size_and_seed}):
        runs = {seed: r for (size, seed), r in by_size_and_seed.items() if size == px}
        accuracies = [r["test_accuracy"] for r in runs.values()]
        rows.append({"px": px, "seeds": list(runs), "accuracies": accuracies, "mean": statistics.mean(accuracies),
                     "std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                     "seconds_per_epoch": round(statistics.mean(r["seconds_per_epoch"] for r in runs.values()), 2),
                     "epochs": sorted({r["epochs"] for r in runs.values()}),
                     "recipes": sorted({recipe(r) for r in runs.values()})})
    return rows


def plot_ladder(rows: list[dict], out: Path, title: str) -> None:
    sizes = [r["px"] for r in rows]
    figure, (accuracy_axes, time_axes) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    accuracy_axes.errorbar(sizes, [100 * r["mean"] for r in rows], yerr=[100 * (r["std"] or 0) for r in rows],
                           fmt="o-", capsize=4, label="mean +- std")
    seeds = [(r["px"], 100 * a) for r in rows for a in r["accuracies"]]
    accuracy_axes.plot(*zip(*seeds), ".", color="gray", alpha=0.7, label="each seed")
    accuracy_axes.legend(fontsize="small")
    accuracy_axes.set(xlabel="input size (px)", ylabel="test accuracy (%)", xticks=sizes)
    time_axes.plot(sizes, [r["seconds_per_epoch"] for r in rows], "o-", color="tab:orange")
    time_axes.set(xlabel="input size (px)", ylabel="seconds per epoch", xticks=sizes)
    for axes in (accuracy_axes, time_axes):
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="JSON lines written by accuracy.py --out")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--prefix", default="resnet18_flowers", help="benchmark names PREFIX_<px>")
    args = parser.parse_args()
    rows = ladder_rows(read_results(args.results, parser, source=""), args.prefix)
    if not rows:
        parser.error(f"{', '.join(map(str, args.results))}: no results named {args.prefix}_<px>; "
                     "run benchmarks/accuracy.py first")
    for mixed in (r for r in rows if len(r["recipes"]) > 1):
        parser.error(f"{mixed['px']} px: the lines mix recipes ({' | '.join(mixed['recipes'])}); give the "
                     "results of one recipe per size")
    print(f"{'px':>4} {'mean acc':>9} {'std':>6} {'s/epoch':>8} {'epochs':>7}  seeds")
    for r in rows:
        seeds = ", ".join(f"{seed}: {100 * a:.2f}" for seed, a in zip(r["seeds"], r["accuracies"]))
        std = f"{100 * r['std']:.2f}" if r["std"] is not None else "-"
        print(f"{r['px']:>4} {100 * r['mean']:>8.2f}% {std:>6} {r['seconds_per_epoch']:>8} "
              f"{'/'.join(map(str, r['epochs'])):>7}  {seeds}")
    epochs = sorted({e for r in rows for e in r["epochs"]})
    most = max(len(r["seeds"]) for r in rows)
    plot_ladder(rows, args.out, f"{args.prefix}: input size ladder, {'/'.join(map(str, epochs))} epochs"
                                f"{f', up to {most} seeds' if most > 1 else ''}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
