"""`cnnzoo sweep` on the tiny network: a 4-trial grid, its ranking, resuming, random search, budget."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnzoo.training.sweep_space import make_trials, parse_grid, parse_sample, trial_name
from tiny_runs import invoke, tiny_setup

GRID = ["--grid", "train.learning_rate=[0.01,0.001]", "--grid", "train.batch_size=[8,16]", "--set", "train.epochs=1"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def history_max(run_dir, column="val_accuracy"):
    with open(run_dir / "history.csv", newline="") as handle:
        return max(float(row[column]) for row in csv.DictReader(handle))


def test_grid_sweep_ranks_four_trials_and_resumes(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    args = ["sweep", config, *GRID, "--runs-dir", tmp_path / "runs", "--data-dir", data_dir]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "tiny-sweep"
    rows = read_csv(folder / "sweep.csv")
    assert sorted(r["trial"] for r in rows) == ["t001-learning_rate0.01-batch_size8", "t002-learning_rate0.01-batch_size16",
                                                "t003-learning_rate0.001-batch_size8",
                                                "t004-learning_rate0.001-batch_size16"]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    scores = [float(r["val_accuracy"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    for row in rows:
        run = folder / Path(row["run"]).name
        assert run.name.startswith(row["trial"] + "-")
        assert float(row["val_accuracy"]) == pytest.approx(history_max(run))
        config_yaml = (run / "config.yaml").read_text()
        assert f"learning_rate: {row['train.learning_rate']}" in config_yaml
        assert f"batch_size: {row['train.batch_size']}" in config_yaml
        assert json.loads((run / "metrics.json").read_text())["epochs_completed"] == 1
    assert f"best trial: {rows[0]['trial']}" in result.output.replace("\n", "")

    # a trial killed in its first epoch (only config.yaml and summary.txt written) resumes in its own folder
    killed = next(p for p in folder.iterdir() if p.name.startswith("t004-"))
    for path in killed.iterdir():
        if path.name not in ("config.yaml", "summary.txt"):
            path.unlink()
    folders = sorted(p.name for p in folder.iterdir())
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in folder.iterdir()) == folders  # no new run folder
    assert again.output.count("done before") == 3 and "trial 4/4" in again.output
    assert json.loads((killed / "metrics.json").read_text())["epochs_completed"] == 1
    rerun = read_csv(folder / "sweep.csv")
    assert {r["trial"] for r in rerun} == {r["trial"] for r in rows} and all(r["status"] == "finished" for r in rerun)

    other = invoke("sweep", config, "--grid", "train.learning_rate=[0.1]", "--runs-dir", tmp_path / "runs")
    assert other.exit_code == 2 and "holds another sweep" in other.output and "--name" in other.output


def test_random_sweep_with_no_budget_left_starts_nothing(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    result = invoke("sweep", config, "--random", "3", "--sample", "train.learning_rate=loguniform(1e-4,1e-1)",
                    "--grid", "train.batch_size=[8,16]", "--budget-minutes", "0", "--runs-dir", tmp_path / "runs",
                    "--data-dir", data_dir, "--metric", "val_loss")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "tiny-sweep"
    rows = read_csv(folder / "sweep.csv")
    assert len(rows) == 3 and all(r["note"] == "budget spent" and r["rank"] == "" for r in rows)
    assert [p.name for p in folder.iterdir() if p.is_dir()] == []
    assert "3 trial(s) not finished" in result.output
    record = json.loads((folder / "sweep.json").read_text())
    assert record["mode"] == "min" and record["random"] == 3


def test_random_trials_are_reproducible_and_within_their_ranges():
    params = [parse_sample("train.learning_rate=loguniform(1e-4, 1e-1)"), parse_sample("data.scale=uniform(0.5, 1)"),
              parse_sample("train.optimizer=choice(adam, sgd)"), parse_grid("train.batch_size=[8, 16]")]
    trials = make_trials(params, 20, seed=3)
    assert trials == make_trials(params, 20, seed=3) != make_trials(params, 20, seed=4)
    for trial in trials:
        a = trial.assignment
        assert 1e-4 <= a["train.learning_rate"] <= 1e-1 and 0.5 <= a["data.scale"] <= 1
        assert a["train.optimizer"] in ("adam", "sgd") and a["train.batch_size"] in (8, 16)
    rates = sorted(t.assignment["train.learning_rate"] for t in make_trials(params[:1], 200, seed=0))
    assert rates[100] == pytest.approx(10 ** -2.5, rel=0.5)  # log-uniform: the median is the geometric middle
    assert trials[0].overrides[2] == f'train.optimizer="{trials[0].assignment["train.optimizer"]}"'


def test_grid_is_cartesian_and_names_say_the_values():
    trials = make_trials([parse_grid("train.learning_rate=[0.01,0.001]"),
                          parse_grid("model.layers[5].Dense.units=[100,500]")], None, 0)
    assert [t.name for t in trials] == ["t001-learning_rate0.01-units100", "t002-learning_rate0.01-units500",
                                        "t003-learning_rate0.001-units100", "t004-learning_rate0.001-units500"]
    assert trials[3].overrides == ["train.learning_rate=0.001", "model.layers[5].Dense.units=500"]
    assert trial_name(7, {"input.shape": [32, 32, 3]}) == "t007-shape32x32x3"


@pytest.mark.parametrize("args, message", [
    (["--grid", "train.learning_rate=0.01"], "must be a non-empty list"),
    (["--sample", "train.learning_rate=normal(0,1)"], "expected KEY=DIST(ARGS)"),
    (["--sample", "train.learning_rate=loguniform(0,1)", "--random", "2"], "low > 0"),
    (["--sample", "train.learning_rate=uniform(0.1,0.2)"], "needs --random N"),
    ([], "nothing to search"),
    (["--grid", "model.layers[9].Dense.units=[3]"], "model.layers[9] does not exist"),
])
def test_sweep_option_errors(tmp_path, args, message):
    config, _ = tiny_setup(tmp_path)
    result = invoke("sweep", config, *args, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")
    assert not (tmp_path / "runs").exists()
