#!/usr/bin/env bash
# One GPU check for cnnzoo, under 8 minutes on one GPU: installs the project, times `cnnzoo bench` on
# lenet, cnn1d, inception_v2 and vgg16 (224x224) in float32 and mixed_float16, trains lenet for 2 epochs
# and inception_v2 at 224 on Flowers-17 for 1 epoch with the mirrored strategy on every GPU present, and
# prints samples/s and the share of the GPU's measured float32 matmul peak (from `cnnzoo bench`).
#
#   benchmarks/gpu_check.sh --data-dir /data                # GPU mode when nvidia-smi lists a GPU
#   benchmarks/gpu_check.sh --cpu --no-install --data-dir /data --out /tmp/check    # CPU mode: small sizes
#
# CPU mode (no GPU, or --cpu) runs the same steps at sizes a CPU finishes in about a minute: bench lenet in
# float32 only (mixed_float16 is a GPU policy), and lenet trained 1 epoch on 300 images with `mirrored`
# (one replica on a CPU). Targets (one H100): LeNet training >= 50,000 samples/s, Inception-V2 at 224
# >= 1,500 samples/s; they are printed next to the measured numbers, not enforced.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=auto INSTALL=1 DATA="${CNNZOO_DATA_DIR:-}" OUT="gpu_check_out"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --no-install) INSTALL=0 ;;
    --data-dir) DATA="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$DATA" ]] || { echo "error: give --data-dir DIR (or set CNNZOO_DATA_DIR): MNIST and Flowers-17 live there" >&2; exit 2; }
if [[ $MODE == auto ]]; then
  GPUS=$( (command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -c '^GPU') || echo 0)
  [[ $GPUS -gt 0 ]] && MODE=gpu || MODE=cpu
fi
[[ $INSTALL == 1 ]] && python -m pip install --quiet -e .
mkdir -p "$OUT"
export CNNZOO_DATA_DIR="$DATA" TF_CPP_MIN_LOG_LEVEL=2 MPLBACKEND=Agg
CNNZOO=(python -m cnnzoo)
echo "gpu_check: $MODE mode, results in $OUT"

bench() {  # name precision batch steps [--set ...]
  local name=$1 precision=$2 batch=$3 steps=$4; shift 4
  echo "+ cnnzoo bench $name --precision $precision --batch-size $batch $*"
  "${CNNZOO[@]}" bench "$name" --precision "$precision" --batch-size "$batch" --steps "$steps" --warmup 2 \
    --json "$@" > "$OUT/bench-$name-$precision.json"
}

train() {  # name label [args ...]
  local name=$1 label=$2; shift 2
  echo "+ cnnzoo train $name --distribute mirrored $*"
  "${CNNZOO[@]}" train "$name" --distribute mirrored --runs-dir "$OUT/runs-$label" "$@" > "$OUT/train-$label.log"
}

if [[ $MODE == gpu ]]; then
  for precision in float32 mixed_float16; do
    bench lenet "$precision" 1024 50
    bench cnn1d "$precision" 256 50
    bench inception_v2 "$precision" 128 20
    bench vgg16 "$precision" 64 20
  done
  train lenet lenet --epochs 2 --set train.batch_size=1024 --set train.precision=mixed_float16
  train inception_v2 inception_v2 --epochs 1 --set train.batch_size=128 --set train.precision=mixed_float16
else
  bench lenet float32 32 3
  train lenet lenet --epochs 1 --set data.limit=300 --set train.batch_size=50 --set train.precision=float32
fi

python - "$OUT" "$MODE" <<'EOF'
import json, pathlib, sys

out, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
benches = {p.stem.removeprefix("bench-"): json.loads(p.read_text()) for p in sorted(out.glob("bench-*.json"))}
peak = max(b["matmul_peak_gflops"] for b in benches.values())
device = next(iter(benches.values()))["device"]
print(f"\n{device}: measured float32 matmul peak {peak:,.0f} GFLOP/s")
print(f"{'bench':<28}{'batch':>7}{'train samples/s':>17}{'% of peak':>11}")
for name, bench in benches.items():
    for row in bench["rows"]:
        print(f"{name:<28}{row['batch_size']:>7}{row['train_samples_per_s']:>17,.0f}{100 * row['train_peak_share']:>10.1f}%")
targets = {"lenet": 50_000, "inception_v2": 1_500}
print(f"\n{'training (mirrored)':<28}{'replicas':>9}{'samples/s':>12}{'% of peak':>11}{'H100 target':>13}")
for metrics_file in sorted(out.glob("runs-*/*/metrics.json")):
    metrics = json.loads(metrics_file.read_text())
    name = metrics["config"]
    flops = next((b["rows"][0]["train_flops_per_sample"] for k, b in benches.items() if k.startswith(name + "-")), None)
    speed = metrics["samples_per_second"] or 0.0
    share = f"{100 * speed * flops / (peak * 1e9):.1f}%" if flops else "-"
    target = f">= {targets[name]:,}" if name in targets else "-"
    print(f"{name:<28}{metrics['distribute']['replicas']:>9}{speed:>12,.0f}{share:>11}{target:>13}")
EOF
