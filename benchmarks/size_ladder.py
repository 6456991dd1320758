"""Plot a size ladder: test accuracy and seconds per epoch against the input size.

    python benchmarks/accuracy.py resnet18_flowers_64 resnet18_flowers_96 resnet18_flowers_128 \\
        --out ladder.jsonl
    python benchmarks/size_ladder.py ladder.jsonl docs/size_ladder.png

Reads accuracy.py's JSON lines, keeps those whose benchmark name ends in `_<pixels>` (the last
line of each size wins, so with --seeds the last seed; lines from before accuracy.py recorded
seconds per epoch are skipped), prints them as a table and draws two panels side by side.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def ladder_rows(results: Path, prefix: str) -> list[dict]:
    """One row per input size, sorted by size: {px, test_accuracy, seconds_per_epoch, epochs}."""
    by_size = {}
    for line in filter(str.strip, results.read_text().splitlines()):
        result = json.loads(line)
        match = re.fullmatch(rf"{re.escape(prefix)}_(\d+)", result.get("benchmark", ""))
        if match and result.get("test_accuracy") is not None and "seconds_per_epoch" in result:
            by_size[int(match.group(1))] = {"px": int(match.group(1)), "test_accuracy": result["test_accuracy"],
                                            "seconds_per_epoch": result["seconds_per_epoch"],
                                            "epochs": result["epochs"]}
    return [by_size[px] for px in sorted(by_size)]


def plot_ladder(rows: list[dict], out: Path, title: str) -> None:
    sizes = [r["px"] for r in rows]
    figure, (accuracy_axes, time_axes) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    accuracy_axes.plot(sizes, [100 * r["test_accuracy"] for r in rows], "o-")
    accuracy_axes.set(xlabel="input size (px)", ylabel="test accuracy (%)", xticks=sizes)
    time_axes.plot(sizes, [r["seconds_per_epoch"] for r in rows], "o-", color="tab:orange")
    time_axes.set(xlabel="input size (px)", ylabel="seconds per epoch (median)", xticks=sizes)
    for axes in (accuracy_axes, time_axes):
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="JSON lines written by accuracy.py --out")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--prefix", default="resnet18_flowers", help="benchmark names PREFIX_<px>")
    args = parser.parse_args()
    rows = ladder_rows(args.results, args.prefix)
    if not rows:
        raise SystemExit(f"{args.results}: no results named {args.prefix}_<px>; run benchmarks/accuracy.py first.")
    print(f"{'px':>4} {'test acc':>9} {'s/epoch':>8} {'epochs':>7}")
    for r in rows:
        print(f"{r['px']:>4} {100 * r['test_accuracy']:>8.2f}% {r['seconds_per_epoch']:>8} {r['epochs']:>7}")
    epochs = sorted({r["epochs"] for r in rows})
    plot_ladder(rows, args.out, f"{args.prefix}: input size ladder, {'/'.join(map(str, epochs))} epochs")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
