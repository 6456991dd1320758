"""The run folder: atomic writes, folder naming, reading a run back, history CSV."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnnzoo.atomic import atomic_save, atomic_write_bytes, atomic_write_json, atomic_write_text
from cnnzoo.errors import RunError
from cnnzoo.runs.folder import HistoryWriter, RunFolder, create_run_dir, read_history, read_json

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


# --- atomic writes -------------------------------------------------------------------------------

def test_atomic_writes_round_trip_and_leave_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01binary")
    atomic_write_text(tmp_path / "b.txt", "héllo\nworld\n")
    atomic_write_json(tmp_path / "c.json", {"loss": float("nan"), "acc": np.float32(0.5), "n": np.int64(3),
                                            "inf": math.inf, "list": (1, 2), "path": Path("x")})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01binary"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\nworld\n"
    text = (tmp_path / "c.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "acc": 0.5, "n": 3, "inf": None, "list": [1, 2], "path": "x"}
    assert text.startswith('{\n  "')  # indent 2
    assert leftovers(tmp_path) == []


def test_atomic_write_replaces_existing_file(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"v": 1})
    atomic_write_json(target, {"v": 2})
    assert read_json(target) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_save_gives_writer_a_temp_path_with_the_same_suffix(tmp_path):
    seen = []

    def writer(tmp: Path):
        seen.append(tmp)
        assert not (tmp_path / "best.keras").exists()  # not renamed until the writer returns
        tmp.write_bytes(b"model")

    assert atomic_save(tmp_path / "best.keras", writer) == tmp_path / "best.keras"
    assert seen[0].parent == tmp_path and seen[0].suffix == ".keras" and ".tmp-" in seen[0].name
    assert (tmp_path / "best.keras").read_bytes() == b"model"
    assert leftovers(tmp_path) == []


def test_failing_writer_leaves_no_file_and_no_temp_file(tmp_path):
    def writer(tmp: Path):
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(tmp_path / "best.keras", writer)
    assert list(tmp_path.iterdir()) == []


def test_failing_writer_keeps_the_existing_file(tmp_path):
    target = tmp_path / "last.keras"
    target.write_bytes(b"old model")

    def writer(tmp: Path):
        tmp.write_bytes(b"new but broken")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save(target, writer)
    assert target.read_bytes() == b"old model"
    assert leftovers(tmp_path) == []


# --- create_run_dir ------------------------------------------------------------------------------

def test_create_run_dir_names_by_utc_time_and_never_reuses_a_folder(tmp_path):
    runs = tmp_path / "deep" / "runs"
    first = create_run_dir(runs, "lenet", now=NOW)
    (first / "config.yaml").write_text("name: lenet\n")
    second = create_run_dir(runs, "lenet", now=NOW)
    third = create_run_dir(runs, "lenet", now=NOW)
    assert first.name == "lenet-20260102-030405"
    assert second.name == "lenet-20260102-030405-2"
    assert third.name == "lenet-20260102-030405-3"
    assert (first / "config.yaml").read_text() == "name: lenet\n"
    assert all(p.is_dir() for p in (first, second, third))


def test_create_run_dir_converts_local_time_to_utc(tmp_path):
    from datetime import timedelta

    local = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert create_run_dir(tmp_path, "vgg", now=local).name == "vgg-20260102-030405"


def test_create_run_dir_in_unwritable_directory_raises_run_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore directory permissions")
        with pytest.raises(RunError, match="not writable") as info:
            create_run_dir(locked, "lenet", now=NOW)
        assert str(locked) in str(info.value) and "--runs-dir" in str(info.value)
        with pytest.raises(RunError, match="--runs-dir"):
            create_run_dir(locked / "sub", "lenet", now=NOW)
    finally:
        locked.chmod(0o700)


def test_create_run_dir_when_the_write_probe_fails(tmp_path, monkeypatch):
    """The same check when running as root, where chmod does not stop writes."""
    import cnnzoo.runs.folder

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cnnzoo.runs.folder.tempfile, "mkstemp", refuse)
    with pytest.raises(RunError, match="not writable.*Permission denied.*--runs-dir"):
        create_run_dir(tmp_path, "lenet", now=NOW)
    assert list(tmp_path.iterdir()) == []


def test_create_run_dir_below_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="cannot create the runs directory.*--runs-dir"):
        create_run_dir(tmp_path / "file" / "runs", "lenet", now=NOW)


def test_create_run_dir_where_runs_dir_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(RunError, match="--runs-dir") as info:
        create_run_dir(tmp_path / "runs", "lenet", now=NOW)
    assert "is a file" in str(info.value)


# --- RunFolder -----------------------------------------------------------------------------------

def make_run(tmp_path: Path) -> Path:
    run = tmp_path / "lenet-20260102-030405"
    run.mkdir()
    (run / "config.yaml").write_text("name: lenet\n")
    return run


def test_run_folder_paths(tmp_path):
    run = RunFolder.open(make_run(tmp_path))
    assert run.name == "lenet-20260102-030405"
    expected = {"config": "config.yaml", "history": "history.csv", "best": "best.keras", "last": "last.keras",
                "metrics": "metrics.json", "summary": "summary.txt", "eval_json": "eval.json",
                "accuracy_png": "accuracy.png", "loss_png": "loss.png",
                "confusion_csv": "confusion_matrix.csv", "confusion_png": "confusion_matrix.png"}
    for attribute, filename in expected.items():
        assert getattr(run, attribute) == run.path / filename
    assert RunFolder(str(run.path)) == run


def test_open_missing_folder(tmp_path):
    with pytest.raises(RunError, match="no such run folder") as info:
        RunFolder.open(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def test_open_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="not a run folder"):
        RunFolder.open(tmp_path / "file")


def test_open_folder_without_config(tmp_path):
    with pytest.raises(RunError, match="is not a cnnzoo run folder.*config.yaml"):
        RunFolder.open(tmp_path)


def test_checkpoint_missing_names_what_exists(tmp_path):
    run = RunFolder.open(make_run(tmp_path))
    with pytest.raises(RunError, match="no checkpoint at all"):
        run.checkpoint("best")
    run.last.write_bytes(b"model")
    assert run.checkpoint("last") == run.last
    with pytest.raises(RunError, match=r"best checkpoint is missing.*only last\.keras.*--checkpoint last"):
        run.checkpoint("best")
    with pytest.raises(RunError, match="unknown checkpoint 'worst'"):
        run.checkpoint("worst")


def test_read_json_errors(tmp_path):
    with pytest.raises(RunError, match="missing"):
        read_json(tmp_path / "metrics.json")
    (tmp_path / "metrics.json").write_text('{"best_epoch": ')
    with pytest.raises(RunError, match="not valid JSON"):
        read_json(tmp_path / "metrics.json")


# --- history -------------------------------------------------------------------------------------

ROWS = [
    {"epoch": 1, "loss": 1.5, "accuracy": 0.4, "val_loss": 1.6, "val_accuracy": 0.35},
    {"epoch": 2, "loss": 1.0, "accuracy": 0.6, "val_loss": 1.1, "val_accuracy": 0.55},
    {"epoch": 3, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": 0.7},
]


def test_history_writer_round_trip_and_complete_after_each_append(tmp_path):
    path = tmp_path / "history.csv"
    writer = HistoryWriter(path)
    for i, row in enumerate(ROWS, start=1):
        writer.append(row)
        lines = path.read_text().splitlines()
        assert len(lines) == i + 1 and all(line.count(",") == 4 for line in lines)
        assert path.read_text().endswith("\n")
        assert len(read_history(path)) == i
    pd.testing.assert_frame_equal(read_history(path), pd.DataFrame(ROWS))
    assert leftovers(tmp_path) == []


def test_history_columns_epoch_first_then_first_seen(tmp_path):
    path = tmp_path / "history.csv"
    writer = HistoryWriter(path)
    writer.append({"loss": 1.0, "epoch": 1})
    writer.append({"epoch": 2, "loss": float("nan"), "learning_rate": 0.01})
    df = read_history(path)
    assert list(df.columns) == ["epoch", "loss", "learning_rate"]
    assert math.isnan(df.loc[0, "learning_rate"]) and math.isnan(df.loc[1, "loss"])


def test_history_writer_resume_appends(tmp_path):
    path = tmp_path / "history.csv"
    first = HistoryWriter(path)
    for row in ROWS[:2]:
        first.append(row)
    resumed = HistoryWriter(path, resume=True)
    resumed.append(ROWS[2])
    pd.testing.assert_frame_equal(read_history(path), pd.DataFrame(ROWS))
    HistoryWriter(path).append(ROWS[0])  # without resume: starts over
    assert len(read_history(path)) == 1


def test_read_history_errors(tmp_path):
    path = tmp_path / "history.csv"
    with pytest.raises(RunError, match="history file is missing"):
        read_history(path)
    path.write_text("")
    with pytest.raises(RunError, match="empty"):
        read_history(path)
    path.write_text("epoch,loss\n")
    with pytest.raises(RunError, match="no epochs"):
        read_history(path)
    assert read_history(path, allow_empty=True).empty
    path.write_text("loss,accuracy\n1,2\n")
    with pytest.raises(RunError, match="no 'epoch' column"):
        read_history(path)
    path.write_text('epoch,loss\n1,"unterminated\n')
    with pytest.raises(RunError, match="cannot be parsed"):
        read_history(path)
