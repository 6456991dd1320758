"""`cnnzoo runs` and `cnnzoo compare` on real tiny runs, plus folders that are damaged or not runs."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import pytest

from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.runs.lock import locked_run
from cnnzoo.runs.table import STATUSES, list_runs
from tiny_runs import invoke, tiny_setup, train_tiny


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Two finished runs that differ in two keys, and copies made interrupted, killed, running and damaged."""
    root = tmp_path_factory.mktemp("runs_table")
    os.environ["CNNZOO_CACHE_DIR"] = str(root / "cache")
    config, data_dir = tiny_setup(root)
    runs = root / "runs"
    first = train_tiny(config, runs, data_dir)
    second = train_tiny(config, runs, data_dir, "--set", "train.learning_rate=0.001", "--set", "train.batch_size=8")
    _copy(first, runs / "tiny-20200101-000000", edit_metrics={"interrupted": "SIGINT", "epochs_completed": 1})
    _copy(first, runs / "tiny-20200101-000001", drop_metrics=True)
    _copy(first, runs / "tiny-20200101-000002", drop_metrics=True)  # running while a test holds its lock
    damaged = _copy(first, runs / "tiny-20200101-000003")
    damaged.joinpath("metrics.json").write_text('{"config": "tiny", "epochs_')
    _copy(second, runs / "lr-sweep" / second.name)
    (runs / "lr-sweep" / "sweep.json").write_text("{}")
    (runs / "notes").mkdir()
    (runs / "notes" / "todo.txt").write_text("not a run")
    (runs / "README.txt").write_text("a file, not a folder")
    return runs, first, second


def _copy(run, dest, edit_metrics=None, drop_metrics=False):
    shutil.copytree(run, dest)
    metrics = dest / "metrics.json"
    if drop_metrics:
        metrics.unlink()
    elif edit_metrics:
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), **edit_metrics}))
    return dest


def test_runs_table_lists_every_kind_of_folder(runs_dir):
    runs, first, second = runs_dir
    assert {r.name: r.status for r in list_runs(runs)}["tiny-20200101-000002"] == "interrupted"  # nobody holds it
    with locked_run(runs / "tiny-20200101-000002"), locked_run(runs / first.name):
        rows = {r.name: r for r in list_runs(runs)}
    assert set(rows) == {first.name, second.name, "tiny-20200101-000000", "tiny-20200101-000001",
                         "tiny-20200101-000002", "tiny-20200101-000003",
                         f"lr-sweep/{second.name}"}  # a sweep's trials are listed; notes/ and README.txt are not runs
    status = {name: r.status for name, r in rows.items()}
    assert status[second.name] == status[f"lr-sweep/{second.name}"] == "finished"
    assert status[first.name] == "running"  # a resume holds its lock: metrics.json is about to be rewritten
    assert status["tiny-20200101-000000"] == "interrupted"
    assert status["tiny-20200101-000001"] == "interrupted"  # killed: no metrics.json, nobody holds the lock
    assert status["tiny-20200101-000002"] == "running"
    assert status["tiny-20200101-000003"] == "damaged"
    assert "not valid JSON" in rows["tiny-20200101-000003"].problem
    assert set(status.values()) <= set(STATUSES)  # what --filter status= accepts

    metrics = json.loads((first / "metrics.json").read_text())
    row = rows[first.name]
    assert (row.config, row.dataset, row.epochs, row.monitor) == ("tiny", "mnist", 2, "val_accuracy")
    assert row.best_epoch == metrics["best_epoch"]
    assert row.best_value == pytest.approx(metrics["best"]["val_accuracy"])
    assert row.test_accuracy == pytest.approx(metrics["test"]["accuracy"])
    assert row.params == metrics["params"] == 1490  # Conv 4@3x3 (40) + Dense 6*6*4 -> 10 (1,450)
    assert row.date.startswith(first.name.split("-")[1][:4])
    killed = rows["tiny-20200101-000001"]  # read back from history.csv alone
    assert (killed.epochs, killed.best_epoch) == (2, row.best_epoch)
    assert killed.best_value == pytest.approx(row.best_value)


def test_every_status_from_metrics_is_filterable():
    from cnnzoo.runs.record import RunRecord

    flags = [{}, {"interrupted": "SIGINT"}, {"nan_loss": {"epoch": 1}}, {"stopped_early": True}]
    flags = [{"epochs_completed": 1, **f} for f in flags]
    assert {RunRecord.from_json(f).status for f in flags} | {"running", "damaged"} == set(STATUSES)


def test_runs_cli_table_sort_filter_json_and_csv(runs_dir):
    runs, first, second = runs_dir
    with locked_run(runs / "tiny-20200101-000002"):
        table = invoke("runs", runs, "--wide")
    assert table.exit_code == 0, table.output
    assert "damaged" in table.output and "running" in table.output and "7 run(s)" in table.output
    assert "samples/s" in table.output and "precision" in table.output
    compact = CliRunner().invoke(app, ["runs", str(runs)], env={"COLUMNS": "80"})
    assert "test acc" in compact.output and "samples/s" not in compact.output and "precision" not in compact.output
    assert max(map(len, compact.output.splitlines())) <= 80, compact.output

    listed = json.loads(invoke("runs", runs, "--json", "--filter", "status=finished", "--sort", "val_loss").output)
    assert [r["name"] for r in listed if "/" not in r["name"]] == sorted([first.name, second.name],
                                                                           key=lambda n: _val_loss(runs / n))
    assert all(r["status"] == "finished" for r in listed)

    text = invoke("runs", runs, "--csv", "--filter", "epochs<2").output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in rows] == ["tiny-20200101-000000"]
    assert rows[0]["status"] == "interrupted"


def _val_loss(run):
    return json.loads((run / "metrics.json").read_text())["best"]["val_loss"]


def test_runs_rejects_a_bad_filter_and_a_missing_folder(runs_dir, tmp_path):
    runs, _, _ = runs_dir
    bad = invoke("runs", runs, "--filter", "status")
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output
    missing = invoke("runs", tmp_path / "nowhere")
    assert missing.exit_code == 2 and "no such runs directory" in missing.output


@pytest.mark.parametrize("args, message", [
    (["--sort", "test_acuracy"], "--sort test_acuracy: no run here has a column or metric called 'test_acuracy'"),
    (["--filter", "test_acuracy>0.1"], "Did you mean `test_accuracy`?"),
    (["--filter", "status=finshed"], "statuses are finished, stopped early, interrupted"),
])
def test_runs_rejects_keys_and_statuses_no_run_has(runs_dir, args, message):
    runs, _, _ = runs_dir  # each was a silent unsorted table or "0 run(s)"
    result = invoke("runs", runs, *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert invoke("runs", runs, "--sort", "test_loss", "--filter", "val_loss<100").exit_code == 0


def test_compare_two_runs_that_differ_in_two_keys(runs_dir, tmp_path):
    runs, first, second = runs_dir
    out = tmp_path / "cmp.png"
    result = invoke("compare", first, second, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["config_differences"] == {"train.batch_size": [16, 8], "train.learning_rate": [0.01, 0.001]}
    assert [r["name"] for r in data["runs"]] == [first.name, second.name]
    for plot in data["plots"]:
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.glob("cmp-*.png")) == ["cmp-accuracy.png", "cmp-loss.png"]

    table = invoke("compare", first, second, "--out", out, "--metric", "loss")
    assert table.exit_code == 0, table.output
    assert "train.learning_rate" in table.output and "test_accuracy" in table.output
    assert out.stat().st_size > 5_000


def test_compare_needs_two_runs(runs_dir):
    _, first, _ = runs_dir
    result = invoke("compare", first)
    assert result.exit_code == 2 and "at least two run folders" in result.output
