"""Export one run in every format and quantisation and print docs/deploy.md's table of the formats.

    python benchmarks/export_formats.py runs/lenet-20261128-004822 [--samples 256] [--repeats 3]

Each row is a plain `cnnzoo export RUN --format F --quantize Q --json` subprocess (so every runtime
starts cold, as a user's would), repeated; the numbers are read back from its export.json. File
size and agreement do not change between repeats; latency is the median of the repeats' medians.
Needs CNNZOO_DATA_DIR (or --data-dir) pointing at the datasets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

ROWS = [("keras", "none"), ("savedmodel", "none"), ("onnx", "none"), ("tflite", "none"),
        ("tflite", "float16"), ("tflite", "dynamic"), ("tflite", "int8")]


def export(run: str, fmt: str, quantize: str, samples: int, extra: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "cnnzoo", "export", run, "--format", fmt, "--quantize", quantize,
                          "--samples", str(samples), "--json", *extra], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"export {fmt}/{quantize} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    print("| format | --quantize | file size | top-1 agreement | max prob. diff | latency / sample |")
    print("|---|---|---:|---:|---:|---:|")
    for fmt, quantize in ROWS:
        reports = [export(args.run, fmt, quantize, args.samples, extra) for _ in range(args.repeats)]
        first = reports[0]
        latency = statistics.median(r["latency_ms_per_sample"] for r in reports)
        print(f"| {fmt} | {quantize} | {first['size_bytes'] / 2**20:.2f} MiB | {first['agreement']:.2%} of "
              f"{first['samples']} | {first['max_abs_diff']:.1e} | {latency:.2f} ms |", flush=True)


if __name__ == "__main__":
    main()
