"""benchmarks/compare_keras.py end to end on a tiny MNIST subset: both sides run, the JSON holds their numbers.
The data is the generated stand-in for the shared datasets (`generated_data_dir`, conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_compare_keras_runs_both_sides_and_reports_ratios(tmp_path, generated_data_dir):
    out = tmp_path / "cmp.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare_keras.py"), "--data-dir", str(generated_data_dir.resolve()),
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


def test_accuracy_script_records_the_run_its_epoch_time_flip_tta_and_last_checkpoint(tmp_path, generated_data_dir):
    import pandas as pd

    results = tmp_path / "results.jsonl"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "accuracy.py"), "lenet", "--runs-dir", str(tmp_path / "runs"),
         "--out", str(results), "--tta", "flip", "--last", "--data-dir", str(generated_data_dir.resolve()),
         "--epochs", "2", "--set", "data.limit=256"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [record] = [json.loads(line) for line in results.read_text().splitlines()]
    history = pd.read_csv(tmp_path / "runs" / record["run"] / "history.csv")
    assert record["epochs"] == 2 and record["seconds_per_epoch"] == round(history["epoch_seconds"].median(), 2)
    assert record["seed"] == 42  # lenet.yaml sets none: train.seed's default, read back from the run
    assert 0.0 <= record["test_accuracy"] <= 1.0
    eval_json = json.loads((tmp_path / "runs" / record["run"] / "eval.json").read_text())
    assert eval_json["tta"] == "flip" and eval_json["checkpoint"] == "last"  # the last eval wrote it
    assert record["test_accuracy_last_flip"] == eval_json["metrics"]["accuracy"]
    assert record["test_accuracy_last"] == eval_json["single_view"]["accuracy"]  # the same eval call's plain view
    assert 0.0 <= record["test_accuracy_flip"] <= 1.0 and 0.0 <= record["test_accuracy_last"] <= 1.0


def test_size_ladder_pools_the_seeds_of_each_size_across_files_and_plots_them(tmp_path):
    def result(px, seed, acc, seconds, epochs=2):
        command = f"cnnzoo train c.yaml --epochs {epochs}" + (f" --seed {seed}" if seed != 42 else "")
        return json.dumps({"benchmark": f"lenet_{px}", "command": command, "seed": seed, "test_accuracy": acc,
                           "seconds_per_epoch": seconds, "epochs": epochs}) + "\n\n"

    def ladder(*files, prefix="lenet"):
        return subprocess.run([sys.executable, str(REPO / "benchmarks" / "size_ladder.py"), *map(str, files),
                               str(tmp_path / "ladder.png"), "--prefix", prefix],
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    first, second, probe = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "probe.jsonl"
    first.write_text(result(96, 42, 0.5, 9.0) + result(64, 42, 0.4, 4.0) + result(96, 42, 0.6, 8.0)
                     + json.dumps({"benchmark": "lenet_128", "test_accuracy": 0.7, "epochs": 2}) + "\n"  # no s/epoch
                     + json.dumps({"benchmark": "lenet", "test_accuracy": 0.9, "seconds_per_epoch": 1.0,
                                   "epochs": 2}) + "\n")
    second.write_text(result(96, 1, 0.8, 10.0))
    plot = ladder(first, second)
    assert plot.returncode == 0, plot.stderr[-3000:]
    table = [row.split() for row in plot.stdout.splitlines()[1:-1]]
    # 96 px: seed 42's later line (0.6) and seed 1's 0.8 -> 70% +- 14.14; seconds: the mean of 8.0 and 10.0
    assert table == [["64", "40.00%", "-", "4.0", "2", "42:", "40.00"],
                     ["96", "70.00%", "14.14", "9.0", "2", "42:", "60.00,", "1:", "80.00"]]
    assert (tmp_path / "ladder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    probe.write_text(result(96, 2, 0.3, 9.0, epochs=4))  # another recipe is not a third seed
    for refused, message in ((ladder(first, probe), "96 px: the lines mix recipes (cnnzoo train c.yaml --epochs 2 | "
                                                    "cnnzoo train c.yaml --epochs 4)"),
                             (ladder(second, prefix="vgg"), "no results named vgg_<px>"),
                             (ladder(tmp_path / "missing.jsonl"), "missing.jsonl: cannot read it")):
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, \
            refused.stderr


def _accuracy_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("accuracy_benchmark", REPO / "benchmarks" / "accuracy.py")
    accuracy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy)
    return accuracy


def test_seconds_per_epoch_is_the_median_of_the_history(tmp_path):
    accuracy = _accuracy_script()
    history = tmp_path / "history.csv"
    history.write_text("epoch,accuracy,epoch_seconds,val_accuracy\n1,0.5,30.0,0.4\n2,0.6,10.0,0.5\n3,0.7,12.5,0.6\n")
    assert accuracy.median_epoch_seconds(history) == 12.5


def test_summarize_prints_mean_and_std_over_seeds_from_saved_lines(tmp_path):
    def line(seed, acc, flip=None, extra=""):
        views = {"test_accuracy_flip": flip} if flip is not None else {}
        command = f"cnnzoo train configs/resnet.yaml{extra}" + (f" --seed {seed}" if seed != 42 else "")
        return {"benchmark": "resnet", "command": command, "seed": seed, "test_accuracy": acc, "best_epoch": 3,
                "epochs": 4, "process_seconds": 10.0, "samples_per_second": 5.0} | views

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps(line(42, 0.80)) + "\n" + json.dumps(line(1, 0.10)) + "\n")
    second.write_text("\n".join(json.dumps(x) for x in (line(1, 0.84, 0.86), line(2, 0.88, 0.87),
                                                         line(42, 0.5, extra=" --epochs 8"))) + "\n\n")
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accuracy.py"), "--summarize", str(first),
                          str(second)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    table = [row.split()[:3] for row in run.stdout.splitlines() if row.startswith("resnet ") and "seeds" not in row]
    assert table == [["resnet", "42", "0.8000"], ["resnet", "1", "0.1000"], ["resnet", "1", "0.8400"],
                     ["resnet", "2", "0.8800"], ["resnet", "42", "0.5000"]]
    # seed 1's later line replaces its first; the 8-epoch recipe is not pooled with the others; the flip
    # view counts only the seeds that recorded it, and says which
    assert ("resnet [cnnzoo train configs/resnet.yaml]: 84.00% +- 4.00 over 3 seeds (42: 80.00, 1: 84.00, "
            "2: 88.00)") in run.stdout
    assert "resnet [cnnzoo train configs/resnet.yaml] flip: 86.50% +- 0.71 over 2 seeds (1: 86.00, 2: 87.00)" \
        in run.stdout
    assert "--epochs 8]:" not in run.stdout  # one seed: no mean


def test_summarize_names_an_unreadable_file_or_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"benchmark": "x"}\nnot json\n')
    for args, message in ((["--summarize", str(bad)], f"--summarize {bad}:2: not a JSON line"),
                          (["--summarize", str(tmp_path / "missing.jsonl")], "cannot read it"),
                          (["lenet", "--summarize", str(bad)], "without benchmark names")):
        run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accuracy.py"), *args], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_the_128px_config_is_the_benchmark_run_it_reports():
    """configs/resnet18_flowers_128px.yaml quotes the results of accuracy.py's resnet18_flowers_128_long
    (resnet18_flowers.yaml with --set overrides): the two must stay the same run."""
    from cnnzoo.config import load_config

    accuracy = _accuracy_script()

    name = "resnet18_flowers_128_long"
    sets = [value for flag, value in zip(accuracy.RUNS[name], accuracy.RUNS[name][1:]) if flag == "--set"]
    epochs = accuracy.RUNS[name][accuracy.RUNS[name].index("--epochs") + 1]
    overridden = load_config(REPO / "configs" / f"{accuracy.CONFIG_OF[name]}.yaml", [*sets, f"train.epochs={epochs}"])
    shipped = load_config(REPO / "configs" / "resnet18_flowers_128px.yaml")
    differ = {key for key in shipped.resolved if shipped.resolved[key] != overridden.resolved[key]}
    assert differ == {"name", "description"}, differ


def test_serve_load_measures_both_servers_the_mix_and_the_soak(tmp_path):
    pytest.importorskip("fastapi")
    out = tmp_path / "load"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "serve_load.py"), "--models", "lenet", "--concurrency", "1,4",
         "--requests", "40", "--images", "4", "--soak", "100", "--mix", "60", "--work-dir", str(tmp_path / "work"),
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    levels = {(r["server"], r["concurrency"]): r for r in report["levels"]}
    assert set(levels) == {(s, c) for s in ("per-request", "batched") for c in (1, 4)}
    assert all(r["requests"] == 40 and r["transport_failures"] == 0 and r["p99_ms"] >= r["p50_ms"] > 0
               for r in levels.values())
    mix = report["mix"]
    assert (mix["good_right"], mix["good_wrong"], mix["bad_4xx"], mix["bad_not_4xx"]) == (54, 0, 6, 0)
    assert report["soak"]["requests"] == 100 and report["soak"]["rss_after_mb"] > 0
    assert report["predict"]["lenet"]["inputs"] == 4
    calls = report["model_calls"]["lenet"]
    assert set(calls["ms_per_call"]) == {"1", "32", "64"} and calls["batch_32_speedup"] > 0
    assert report["health_floor"]["requests"] == 5000 and report["health_floor"]["transport_failures"] == 0
    assert [row["concurrency"] for row in report["speedup"]] == [1, 4]
    assert out.with_suffix(".csv").read_text().startswith("model,server,concurrency,")
