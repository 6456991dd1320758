"""benchmarks/compare_keras.py end to end on a tiny MNIST subset: both sides run, the JSON holds their numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_compare_keras_runs_both_sides_and_reports_ratios(tmp_path, real_data_dir):
    out = tmp_path / "cmp.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare_keras.py"), "--data-dir", str(real_data_dir.resolve()),
         "--pairs", "lenet", "--repeats", "1", "--mnist-samples", "2000", "--out", str(out),
         "--work-dir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {row["metric"].strip(): row for row in report["summary"]}
    assert rows["params"]["cnnzoo"] == rows["params"]["plain"] == 1_256_080
    for metric in ("train samples/s (epochs 2+)", "peak RSS MB", "data prep s"):
        row = rows[metric]
        assert row["cnnzoo"] > 0 and row["plain"] > 0
        assert row["ratio"] == row["cnnzoo"] / row["plain"]
    trains = [r for r in report["records"] if r["kind"] == "train"]
    assert {r["side"] for r in trains} == {"cnnzoo", "plain"}
    assert all(r["exit_code"] == 0 for r in trains)
    assert [r["train_samples"] for r in trains] == [1600, 1600]
    assert "cnnzoo dtype policy (metrics.json): lenet: " in result.stdout
