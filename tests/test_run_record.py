"""RunRecord (cnnzoo.runs.record): the one reader and writer of metrics.json, with a version and tolerant
reading of older runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cnnzoo.errors import RunError
from cnnzoo.runs.folder import RunFolder
from cnnzoo.runs.record import VERSION, RunRecord
from cnnzoo.runs.table import read_row
from tiny_runs import tiny_setup, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("record")
    config, data_dir = tiny_setup(root)
    return RunFolder(train_tiny(config, root / "runs", data_dir, "--epochs", "1"))


def test_a_trained_run_writes_a_versioned_record_that_reads_back_equal(trained):
    data = json.loads(trained.metrics.read_text())
    assert data["version"] == VERSION
    assert list(data)[:4] == ["config", "dataset", "monitor", "epochs_completed"]  # the file's key order
    record = RunRecord.read(trained.metrics)
    assert record.to_json() == data
    assert (record.config, record.epochs_completed, record.status) == ("tiny", 1, "finished")
    assert record.test["accuracy"] == pytest.approx(data["test"]["accuracy"])
    assert record.class_names == [str(i) for i in range(10)]


def test_a_record_of_an_older_cnnzoo_reads_with_defaults_and_keeps_unknown_keys(tmp_path):
    old = {"config": "lenet", "epochs_completed": 3, "best": {"val_accuracy": 0.9}, "test": None,
           "from_the_future": {"x": 1}}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(old))
    record = RunRecord.read(path)
    assert (record.version, record.test, record.interrupted, record.best_epoch) == (1, {}, None, None)
    assert record.extra == {"from_the_future": {"x": 1}}
    record.write(path)
    assert json.loads(path.read_text())["from_the_future"] == {"x": 1}


@pytest.mark.parametrize("content, message", [
    ('{"epochs_completed": "three"}', "`epochs_completed` holds str"),
    ('{"config": "tiny", "wall_seconds": 3.5}', "`epochs_completed` is missing"),  # every cnnzoo wrote it
    ('{"epochs_completed": 1, "best": [1, 2]}', "`best` holds list"),
    ('{"epochs_completed": 1, "stopped_early": 1}', "`stopped_early` holds int"),
    ("[1, 2]", "does not hold a JSON object"),
    ('{"config": "tiny", "epo', "is not valid JSON"),
])
def test_a_damaged_record_is_a_run_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(RunError, match=message) as raised:
        RunRecord.read(path)
    assert str(path) in str(raised.value)


def test_a_mistyped_record_makes_the_runs_table_row_damaged(trained, tmp_path):
    copy = tmp_path / trained.name
    copy.mkdir()
    for name in ("config.yaml", "history.csv"):
        (copy / name).write_bytes((trained.path / name).read_bytes())
    data = json.loads(trained.metrics.read_text())
    (copy / "metrics.json").write_text(json.dumps({**data, "wall_seconds": "fast"}))
    row = read_row(copy)
    assert row.status == "damaged" and "wall_seconds" in row.problem


def test_ints_count_as_floats_and_statuses_follow_the_flags():
    record = RunRecord.from_json({"epochs_completed": 2, "wall_seconds": 3, "nan_loss": {"epoch": 2, "step": 5}})
    assert record.wall_seconds == 3 and record.status == "nan loss"
    assert dataclasses.replace(record, nan_loss=None, interrupted="SIGTERM").status == "interrupted"


CRAFTED = {
    "a-string-metric": {"best": {"val_accuracy": "high", "epoch": 1}},
    "a-list-metric": {"test": {"accuracy": [1, 2]}},
    "a-nested-metric": {"best": {"val_accuracy": {"a": 1}}},
    "a-number-monitor": {"monitor": 5},
}


def test_crafted_records_are_damaged_rows_and_the_table_never_fails(tmp_path):
    from tiny_runs import invoke

    runs = tmp_path / "runs"
    for name, fields in {**CRAFTED, "=cmd|calc": {}, "ok\x1b[2J": {"config": "[red]x\x1b]8;;http://e\x1b\\"}}.items():
        folder = runs / f"{name}-20260101-000000"
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("name: x\n")
        (folder / "history.csv").write_text("epoch,loss,val_accuracy\n1,0.5,0.5\n")
        (folder / "metrics.json").write_text(json.dumps({"epochs_completed": 1, "best": {"val_accuracy": 0.5},
                                                         "test": {"accuracy": 0.5}, **fields}))
    rows = {row.name.split("-2026")[0]: row for row in list_runs_of(runs)}
    assert all(rows[name].status == "damaged" for name in CRAFTED)
    assert "expected a number" in rows["a-string-metric"].problem
    for args in ([], ["--sort", "val_accuracy"], ["--wide"], ["--csv"], ["--json"]):
        result = invoke("runs", runs, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "\x1b" not in result.output
    csv_text = invoke("runs", runs, "--csv").output
    assert "'=cmd|calc" in csv_text and "\n=cmd" not in csv_text  # a spreadsheet reads it as text


def list_runs_of(folder):
    from cnnzoo.runs.table import list_runs

    return list_runs(folder)
