"""Streamed data, measured: memory that does not grow with the data, the input pipeline's speed against what
training consumes, and Flowers-17 streamed against in memory.

    python benchmarks/streaming.py rss                    # 2,000 vs 50,000 synthetic JPEGs, one epoch each
    python benchmarks/streaming.py pipeline --data-dir ../shared/data
    python benchmarks/streaming.py flowers --data-dir ../shared/data
    python benchmarks/streaming.py all --data-dir ../shared/data --out streaming.json

rss       one-epoch `cnnzoo train` of a small CNN (32x32 input) streamed over synthetic image folders of
          2,000 and 50,000 JPEGs (64x64, 10 classes), and over both packed as TFRecord shards;
          peak RSS is the child's ru_maxrss (os.wait4). Target: under 10% growth for 25x the data.
pipeline  images/s of the input pipeline alone (decode, scale, batch: iterated without a model) against
          the images/s the training step consumes (`cnnzoo bench`, synthetic batches), for LeNet on
          MNIST (in memory) and resnet18_flowers_128px on Flowers-17 streamed from a folder.
flowers   resnet18_flowers_128px, one epoch: oxflower17 in memory, the same images as a streamed image
          folder, and as TFRecord shards (`cnnzoo pack`). Target: streamed within 1.25x of in memory.

Numbers are machine-specific: compare the ratios, printed with the CPU they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SMALL_CNN = """\
name: stream_bench
input: {{shape: [32, 32, 3]}}
model:
  layers:
    - Conv2D: {{filters: 16, kernel_size: 3, activation: relu}}
    - MaxPooling2D: {{pool_size: 2}}
    - Conv2D: {{filters: 32, kernel_size: 3, activation: relu}}
    - GlobalAveragePooling2D
    - Dense: {{units: 10, activation: softmax}}
data: {{{data}}}
train: {{epochs: 1, batch_size: 128}}
"""


def cpu() -> str:
    flags = open("/proc/cpuinfo").read()
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} cores, {'AVX512_BF16' if 'avx512_bf16' in flags else 'no AVX512_BF16'}"


def synthetic_folder(root: Path, count: int, classes: int = 10, size: int = 64) -> Path:
    """`count` JPEGs in `classes` folders (made once; reused when present)."""
    from PIL import Image

    marker = root / ".complete"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for k in range(classes):
        (root / f"class_{k:02d}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.clip(rng.normal(20 + 20 * (i % classes), 40, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"class_{i % classes:02d}" / f"{i:06d}.jpg", quality=90)
    marker.write_text("")
    return root


def flowers_folder(data_dir: Path, root: Path) -> Path:
    """17flowers.tgz as an image folder: 80 images a class, in file order."""
    if (root / ".complete").exists():
        return root
    with tarfile.open(data_dir / "17flowers.tgz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".jpg"):
                number = int(Path(member.name).stem.split("_")[1])
                target = root / f"flower_{(number - 1) // 80:02d}" / Path(member.name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    (root / ".complete").write_text("")
    return root


def train(args: list[str], runs: Path, env: dict | None = None) -> dict:
    """One `cnnzoo train` subprocess: its metrics.json, peak RSS and process seconds."""
    command = [sys.executable, "-m", "cnnzoo", "train", *map(str, args), "--runs-dir", str(runs)]
    print("$", " ".join(command[2:]), flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cnnzoo train failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
    run = max((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    metrics = json.loads((run / "metrics.json").read_text())
    return {"peak_rss_mb": round(usage.ru_maxrss * 1024 / 1e6), "epoch_seconds": metrics["epoch_seconds_total"],
            "process_seconds": round(time.perf_counter() - started, 1), "train_samples": metrics["train_samples"],
            "samples_per_second": metrics["samples_per_second"], "source": run.name}


def config(work: Path, name: str, data: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(SMALL_CNN.format(data=data))
    return path


def rss(work: Path) -> dict:
    rows = {}
    for count in (2_000, 50_000):
        folder = synthetic_folder(work / f"jpeg_{count}", count)
        streamed = config(work, f"folder_{count}", f"dataset: image_folder, path: {folder}, in_memory: false")
        rows[f"folder_{count}_streamed"] = train([streamed], work / "runs" / f"s{count}")
    rows["folder_2000_in_memory"] = train([config(work, "mem", f"dataset: image_folder, path: {work / 'jpeg_2000'}, "
                                                               "in_memory: true")], work / "runs" / "m2000")
    for count in (2_000, 50_000):
        packed = work / f"packed_{count}"
        if not packed.exists():
            subprocess.run([sys.executable, "-m", "cnnzoo", "pack", str(work / f"jpeg_{count}"), str(packed)],
                           check=True, stdout=subprocess.DEVNULL)
        rows[f"tfrecord_{count}"] = train([config(work, f"tfr{count}", f"dataset: tfrecord, path: {packed}")],
                                          work / "runs" / f"t{count}")

    def growth(kind: str) -> float:
        return round(rows[f"{kind}_50000{'_streamed' if kind == 'folder' else ''}"]["peak_rss_mb"]
                     / rows[f"{kind}_2000{'_streamed' if kind == 'folder' else ''}"]["peak_rss_mb"] - 1, 3)

    return {"rows": rows, "rss_growth_for_25x_data": {"folder": growth("folder"), "tfrecord": growth("tfrecord")}}


def pipeline_speed(data_dir: Path, work: Path) -> dict:
    """images/s of the input pipeline alone and of the training step (bench), side by side."""
    flowers = flowers_folder(data_dir, work / "flowers")
    cases = {"lenet": ["configs/lenet.yaml"],
             "resnet18_flowers_128px_streamed": ["configs/resnet18_flowers_128px.yaml", *as_folder(flowers)]}
    out = {}
    for name, args in cases.items():
        code = PIPELINE_ONLY.format(config=args[0], overrides=[a for a in args[1:] if a != "--set"],
                                    data_dir=str(data_dir))
        done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"{name}: the pipeline measurement failed (exit code {done.returncode})")
        alone = json.loads(done.stdout.strip().splitlines()[-1])
        bench = subprocess.run([sys.executable, "-m", "cnnzoo", "bench", args[0], *args[1:], "--json"],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, check=True)  # synthetic batches
        row = json.loads(bench.stdout)["rows"][0]
        out[name] = {"pipeline_images_per_second": alone["images_per_second"],
                     "training_images_per_second": round(row["train_samples_per_s"], 1),
                     "pipeline_over_training": round(alone["images_per_second"] / row["train_samples_per_s"], 2)}
    return out


PIPELINE_ONLY = """
import json, time
from pathlib import Path
from cnnzoo import data as datasets
from cnnzoo.config import load_config
from cnnzoo.training.labels import LabelPlan
from cnnzoo.training.setup import make_pipelines
config = load_config("{config}", {overrides!r})
splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=Path("{data_dir}"), seed=42,
                               progress=False)
plan = LabelPlan(loss="categorical_crossentropy", one_hot=True)
pipes = make_pipelines(config, splits, plan)
steps = max(1, len(splits.x_train) // config.train.batch_size)
batches = iter(pipes.train)
next(batches)
started = time.perf_counter()
for _ in range(steps):
    next(batches)
seconds = time.perf_counter() - started
del batches  # free the iterator while its decode threads can still take the GIL (not at interpreter exit)
print(json.dumps({{"images_per_second": round(steps * config.train.batch_size / seconds, 1)}}), flush=True)
"""


def as_folder(folder: Path) -> list[str]:
    """The config's own data section (splits, augmentation) with its source swapped for a streamed folder."""
    return ["--set", "data.dataset=image_folder", "--set", f"data.path={folder}", "--set", "data.in_memory=false"]


def flowers(data_dir: Path, work: Path) -> dict:
    folder = flowers_folder(data_dir, work / "flowers")
    packed = work / "flowers_packed"
    if not packed.exists():
        subprocess.run([sys.executable, "-m", "cnnzoo", "pack", str(folder), str(packed)], check=True,
                       stdout=subprocess.DEVNULL)
    base = [ROOT / "configs" / "resnet18_flowers_128px.yaml", "--epochs", "1", "--data-dir", data_dir]
    rows = {"in_memory": train(base, work / "runs" / "fm"),
            "streamed_folder": train([*base, *as_folder(folder)], work / "runs" / "fs"),
            "tfrecord": train([*base, "--set", "data.dataset=tfrecord", "--set", f"data.path={packed}"],
                              work / "runs" / "ft")}
    assert len({row["train_samples"] for row in rows.values()}) == 1, "the three must train on as many images"
    memory = rows["in_memory"]["epoch_seconds"]
    return {"rows": rows, "streamed_vs_in_memory": round(rows["streamed_folder"]["epoch_seconds"] / memory, 3),
            "tfrecord_vs_in_memory": round(rows["tfrecord"]["epoch_seconds"] / memory, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["rss", "pipeline", "flowers", "all"])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNZOO_DATA_DIR", "../shared/data")))
    parser.add_argument("--work", type=Path, help="where the synthetic folders and runs go (default: a temp folder)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cnnzoo-streaming-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"cpu": cpu()}
    if args.what in ("rss", "all"):
        results["rss"] = rss(work)
    if args.what in ("pipeline", "all"):
        results["pipeline"] = pipeline_speed(args.data_dir.resolve(), work)
    if args.what in ("flowers", "all"):
        results["flowers"] = flowers(args.data_dir.resolve(), work)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
