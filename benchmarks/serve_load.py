"""Load test of `cnnzoo serve` on loopback: requests/s and latency at several concurrencies, dynamic batching
against one model call per request, `cnnzoo predict` on the same images, memory over a soak, and a mix
with bad requests.

    python benchmarks/serve_load.py                                  # both models (~7 min on 2 cores)
    python benchmarks/serve_load.py --models lenet --requests 500 --soak 2000 --out runs/serve-load

For each model (LeNet on 28x28 digits; inception_v2_gap at 96x96x3, Flowers-17's 17 classes) a run folder
is made from the shipped config with seeded, untrained weights (speed does not depend on the weights), and
--images random PNG (LeNet) or JPEG (Inception) files are written under --work-dir. Each server runs in
its own process (`python -m cnnzoo serve RUN --port P`); the client, in this process, is one asyncio loop
that posts one image per request (multipart field `file`) on C keep-alive connections at once, for at
most --requests requests or --seconds seconds per level:

  per-request  `--max-batch 1`: every request is one model call (what a server without batching does)
  batched      the defaults, `--max-batch 32 --max-wait-ms 5`

at concurrency 1, 8 and 32; latency is the client's, from sending a request to reading its answer.

On LeNet's batched server three more checks follow. GET /health at concurrency 32. The mix: --mix
requests of which 10% are bad (a truncated PNG, text named .png, a text/plain body, broken JSON, an array
of the wrong shape); every bad one must get a 4xx with an error and every good one the classes and
probabilities `cnnzoo predict --json` gives that file. The soak: --soak requests at concurrency 32,
after 1,000 to warm up, with the server's resident memory (VmRSS) read before and after each of --soak-parts parts.

`cnnzoo predict RUN IMAGES...` on the same files is timed as a whole command (TensorFlow's import
included) and by the rate it prints (model calls only), and the predictor the server runs is timed alone
in this process at batch 1, 32 and 64: what batching can gain at most.
Numbers are printed and written to OUT.json and OUT.csv; the CPU model and lscpu's avx512 flags with them.
Loopback only; every level is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import itertools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODELS = {  # name: (config, overrides, image file shape, suffix)
    "lenet": ("lenet", [], (28, 28), ".png"),
    "inception_v2_gap": ("inception_v2_gap", ["input.shape=[96,96,3]"], (96, 96, 3), ".jpg"),
}
SERVERS = {"per-request": ["--max-batch", "1"], "batched": ["--max-batch", "32", "--max-wait-ms", "5"]}
BOUNDARY = "cnnzoo-load-test"


def make_run(folder: Path, config: str, overrides: list[str]) -> Path:
    """A run folder (config.yaml, best.keras) of the shipped config with seeded weights."""
    import keras
    import yaml

    from cnnzoo.config import load_config
    from cnnzoo.model.builder import build_model

    spec = load_config(REPO / "configs" / f"{config}.yaml", overrides)
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(spec.resolved, sort_keys=False))
    build_model(spec).model.save(folder / "best.keras")
    return folder


def write_images(folder: Path, shape: tuple[int, ...], suffix: str, count: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"{i:05d}{suffix}" for i in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(path)
    return paths


def multipart(name: str, data: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n".encode()
            + data + f"\r\n--{BOUNDARY}--\r\n".encode())


FILE_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class Server:
    """`cnnzoo serve` in its own process on a free loopback port, until /health answers."""

    def __init__(self, run: Path, options: list[str]):
        self.log = run.parent / f"serve{'-'.join([''] + options)}.log"  # a file: a pipe nobody reads fills up
        with self.log.open("w") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "cnnzoo", "serve", str(run), "--port", "0",
                                             *options], stdout=output, stderr=subprocess.STDOUT,
                                            env=os.environ | {"PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 180
        while not (ready := re.search(r"on http://127\.0\.0\.1:(\d+) ", self.log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.3)
        self.port = int(ready.group(1))

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)


def send(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, bytes]:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


def wire(body: bytes, headers: dict) -> bytes:
    """One whole HTTP/1.1 POST /predict request, as the client sends it."""
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers | {"Content-Length": len(body)}).items())
    return f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + body


def load(port: int, requests: list[tuple[bytes, dict]], concurrency: int, count: int, seconds: float,
         check=None, payloads: list[bytes] | None = None) -> dict:
    """`count` requests (cycling through `requests`) from `concurrency` keep-alive connections of one asyncio
    client (cheap enough to leave the server most of the CPU), stopped after `seconds`; `check(index, status,
    body)` sees every answer, else anything but 200 is a failure."""
    payloads = payloads or [wire(body, headers) for body, headers in requests]
    numbers, latencies, failures = itertools.count(), [], []
    stop_at = time.perf_counter() + seconds

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (index := next(numbers)) < count and time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                writer.write(payloads[index % len(payloads)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                body = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError) as exc:
                failures.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            if check is not None:
                check(index, status, body)
            elif status != 200:
                failures.append(f"status {status}")
            if re.search(rb"(?i)connection: *close", head):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    async def clients():
        await asyncio.gather(*(client() for _ in range(concurrency)))

    started = time.perf_counter()
    asyncio.run(clients())
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "seconds": round(elapsed, 3), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "transport_failures": len(failures), "failures": failures[:5]}


def predict_command(run: Path, files: list[Path]) -> tuple[dict, list[dict]]:
    """`cnnzoo predict RUN FILES --json --top-k 3`: wall seconds, its printed model rate, and its answers."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cnnzoo", "predict", str(run), *map(str, files), "--json"],
                            capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=1800)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    rate = re.search(r"\(([\d,]+) inputs/s", result.stderr)
    return ({"inputs": len(files), "wall_seconds": round(elapsed, 2),
             "inputs_per_s_wall": round(len(files) / elapsed, 1),
             "inputs_per_s_model": float(rate.group(1).replace(",", "")) if rate else None},
            json.loads(result.stdout))


def bad_requests(good_png: bytes) -> list[tuple[bytes, dict]]:
    json_type = {"Content-Type": "application/json"}
    return [
        (multipart("cut.png", good_png[: len(good_png) // 2]), FILE_TYPE),
        (multipart("notes.png", b"not an image\n"), FILE_TYPE),
        (b"hello", {"Content-Type": "text/plain"}),
        (b"{\"instances\": [", json_type),
        (json.dumps({"instances": [[0] * 7]}).encode(), json_type),
    ]


def mix(server: Server, files: list[Path], expected: list[dict], count: int) -> dict:
    """Every tenth request bad: each bad one answered 4xx with an error, each good one as predict answered."""
    good = [(multipart(p.name, p.read_bytes()), FILE_TYPE) for p in files]
    bad = bad_requests(files[0].read_bytes())
    requests = [bad[(i // 10) % len(bad)] if i % 10 == 9 else good[i % len(good)] for i in range(len(good) * 10)]
    tally = {"good_right": 0, "good_wrong": 0, "bad_4xx": 0, "bad_not_4xx": 0}

    def check(index: int, status: int, body: bytes) -> None:
        index %= len(requests)
        if index % 10 == 9:
            ok = 400 <= status < 500 and "error" in json.loads(body)
            key = "bad_4xx" if ok else "bad_not_4xx"
        else:
            key = "good_right" if status == 200 and _same(json.loads(body)["predictions"][0],
                                                           expected[index % len(good)]) else "good_wrong"
        tally[key] += 1

    result = load(server.port, requests, 32, count, seconds=600, check=check)
    return result | tally


def _same(mine: dict, theirs: dict) -> bool:
    classes = [t["class"] for t in mine["top"]] == [t["class"] for t in theirs["top"]]
    return classes and all(abs(a["probability"] - b["probability"]) < 1e-5 for a, b in zip(mine["top"], theirs["top"]))


def soak(server: Server, files: list[Path], count: int, checkpoints: int = 5) -> dict:
    """`count` requests at concurrency 32 after 1,000 to warm up, in `checkpoints` equal parts, with the
    server's resident memory after each part: a leak grows part by part, allocator noise does not."""
    requests = [(multipart(p.name, p.read_bytes()), FILE_TYPE) for p in files]
    load(server.port, requests, 32, 1000, seconds=300)  # warm up: allocator pools, connection buffers
    rss, parts = [round(server.rss_mb(), 1)], []
    for _ in range(checkpoints):
        parts.append(load(server.port, requests, 32, count // checkpoints, seconds=300))
        rss.append(round(server.rss_mb(), 1))
    seconds = sum(part["seconds"] for part in parts)
    answered = sum(part["requests"] for part in parts)
    return {"requests": answered, "seconds": round(seconds, 3), "requests_per_s": round(answered / seconds, 1),
            "p99_ms": max(part["p99_ms"] for part in parts),
            "transport_failures": sum(part["transport_failures"] for part in parts),
            "rss_mb": rss, "rss_before_mb": rss[0], "rss_after_mb": rss[-1],
            "rss_growth_mb": round(rss[-1] - rss[0], 1)}


def model_calls(run: Path, sizes=(1, 32, 64)) -> dict:
    """Milliseconds per call of the predictor the server runs, at each batch size, in this process: the
    ceiling of what batching can gain (images/s at batch 32 over images/s at batch 1)."""
    from cnnzoo.deploy.predict import model_source
    from cnnzoo.deploy.serving.predictor import load_predictor

    predictor = load_predictor(model_source(run, "best", None), data_dir=None)
    dtype = np.uint8 if len(predictor.input_shape) == 3 else np.float32
    timings = {}
    for size in sizes:
        x = np.zeros((size, *predictor.input_shape), dtype)
        for _ in range(3):
            predictor.probabilities(x)
        calls = max(5, 256 // size)
        started = time.perf_counter()
        for _ in range(calls):
            predictor.probabilities(x)
        timings[size] = (time.perf_counter() - started) / calls
    return {"ms_per_call": {size: round(s * 1000, 3) for size, s in timings.items()},
            "inputs_per_s": {size: round(size / s, 1) for size, s in timings.items()},
            "batch_32_speedup": round(timings[1] * 32 / timings[32], 2)}


def health_floor(server: Server) -> dict:
    """GET /health at concurrency 32: what the HTTP stack alone answers per second, without a model."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    return load(server.port, [], 32, 5000, seconds=20, payloads=[request])


def cpu() -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    model = re.search(r"Model name:\s*(.+)", lscpu)
    flags = re.search(r"Flags:\s*(.+)", lscpu)
    avx512 = sorted(f for f in (flags.group(1).split() if flags else []) if f.startswith("avx512"))
    return {"model": model.group(1).strip() if model else platform.processor(), "cores": os.cpu_count(),
            "avx512": avx512}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lenet,inception_v2_gap")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=2000, help="Requests per level at most.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Seconds per level at most.")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--soak", type=int, default=10_000)
    parser.add_argument("--soak-parts", type=int, default=5, help="Memory is read after each part of the soak.")
    parser.add_argument("--mix", type=int, default=2000)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/serve-load"))
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cnnzoo-serve-load-"))
    report = {"cpu": cpu(), "arguments": {k: str(v) for k, v in vars(args).items()}, "levels": [], "predict": {},
              "model_calls": {}}
    print(f"CPU: {report['cpu']}", flush=True)
    for name in args.models.split(","):
        config, overrides, shape, suffix = MODELS[name]
        run = make_run(work / name / "run", config, overrides)
        files = write_images(work / name / "images", shape, suffix, args.images)
        report["predict"][name], expected = predict_command(run, files)
        print(f"{name}: cnnzoo predict {report['predict'][name]}", flush=True)
        report["model_calls"][name] = model_calls(run)
        print(f"{name}: the predictor alone {report['model_calls'][name]}", flush=True)
        requests = [(multipart(p.name, p.read_bytes()), FILE_TYPE) for p in files]
        for server_name, options in SERVERS.items():
            server = Server(run, options)
            try:
                for concurrency in map(int, args.concurrency.split(",")):
                    level = load(server.port, requests, concurrency, args.requests, args.seconds)
                    row = {"model": name, "server": server_name, "concurrency": concurrency, **level}
                    report["levels"].append(row)
                    print(json.dumps(row), flush=True)
                if name == "lenet" and server_name == "batched":
                    report["health_floor"] = health_floor(server)
                    print(f"GET /health: {report['health_floor']}", flush=True)
                    report["mix"] = mix(server, files, expected, args.mix)
                    print(f"mix: {report['mix']}", flush=True)
                    report["soak"] = soak(server, files, args.soak, args.soak_parts)
                    print(f"soak: {report['soak']}", flush=True)
            finally:
                server.stop()
    report["speedup"] = speedups(report["levels"])
    print(json.dumps(report["speedup"], indent=1))
    write(report, args.out)


def speedups(levels: list[dict]) -> list[dict]:
    """Batched requests/s over per-request requests/s, per model and concurrency."""
    by_key = {(r["model"], r["server"], r["concurrency"]): r for r in levels}
    return [{"model": m, "concurrency": c,
             "speedup": round(by_key[(m, "batched", c)]["requests_per_s"] / r["requests_per_s"], 2)}
            for (m, s, c), r in by_key.items() if s == "per-request" and (m, "batched", c) in by_key]


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    with out.with_suffix(".csv").open("w", newline="") as handle:
        columns = ["model", "server", "concurrency", "requests", "seconds", "requests_per_s", "p50_ms", "p99_ms",
                   "transport_failures"]
        writer = csv.DictWriter(handle, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(report["levels"])
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
