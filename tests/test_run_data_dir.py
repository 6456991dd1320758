"""The data folder a run was trained with is recorded in its folder (data_dir.json), and `eval`, `predict` and
`train --resume` read the data there when no --data-dir is given: --data-dir, then the recorded folder (if it
exists here), then CNNZOO_DATA_DIR. The record is someone else's data: read by the bounded reader, only a
folder to look in, and a missing or unusable one falls back with a note."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cnnzoo.data import RecordedDataDir, resolve_data_dir
from cnnzoo.runs.folder import RunFolder
from tiny_runs import invoke, tiny_setup, train_tiny


@pytest.fixture(autouse=True)
def _no_other_data(tmp_path, monkeypatch):
    """No CNNZOO_DATA_DIR, and an empty Keras cache: the dataset is found through the record or not at all."""
    monkeypatch.delenv("CNNZOO_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run folder, absolute data folder): one tiny run trained with a relative --data-dir."""
    root = tmp_path_factory.mktemp("data-dir")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CNNZOO_DATA_DIR", raising=False)
        patch.chdir(root)
        config, data_dir = tiny_setup(Path("setup"))
        run = train_tiny(config, Path("runs"), data_dir)
    return root / run, (root / data_dir).resolve()


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    return copy


def _eval_accuracy(*args) -> tuple[float, str]:
    result = invoke("eval", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["metrics"]["accuracy"], result.stderr


def test_training_records_the_absolute_data_folder(trained):
    run, data_dir = trained
    assert json.loads((run / "data_dir.json").read_text()) == {"data_dir": str(data_dir)}


def test_eval_without_data_dir_reads_the_folder_training_used(trained, tmp_path, monkeypatch):
    run, data_dir = trained
    monkeypatch.chdir(tmp_path)  # the relative --data-dir of training means nothing here
    accuracy, said = _eval_accuracy(run)
    assert accuracy == pytest.approx(json.loads((run / "metrics.json").read_text())["test"]["accuracy"], abs=1e-6)
    assert f"data folder: {data_dir} (the one training used, recorded in {run / 'data_dir.json'})" in said


def test_the_recorded_folder_wins_over_cnnzoo_data_dir_and_data_dir_over_both(trained, tmp_path, monkeypatch):
    run, data_dir = trained
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path))  # an existing folder without the dataset
    assert "(the one training used" in _eval_accuracy(run)[1]
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    assert "data folder" not in _eval_accuracy(run, "--data-dir", copy)[1]  # named by the user: nothing to say


def test_a_recorded_folder_missing_here_falls_back_with_a_note(trained, tmp_path, monkeypatch):
    run, data_dir = trained
    theirs = _copy(run, tmp_path)  # a run folder from another machine
    (theirs / "data_dir.json").write_text(json.dumps({"data_dir": "/home/someone/else/data"}))
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(data_dir))
    accuracy, said = _eval_accuracy(theirs)
    assert "the data folder training used, /home/someone/else/data (recorded in" in said
    assert "does not exist here; pass --data-dir DIR" in said
    assert f"data folder: {data_dir} (CNNZOO_DATA_DIR)" in said

    monkeypatch.delenv("CNNZOO_DATA_DIR")  # no folder at all: the dataset is found in the Keras cache
    shutil.copytree(data_dir, tmp_path / "keras-home" / "datasets")
    assert ("no other data folder (no --data-dir, CNNZOO_DATA_DIR unset): the dataset is looked for through "
            "data.path and the Keras cache") in " ".join(_eval_accuracy(theirs)[1].split())


def test_a_recorded_path_is_shown_as_text_never_as_terminal_codes(trained, tmp_path, monkeypatch):
    run, data_dir = trained
    theirs = _copy(run, tmp_path)
    (theirs / "data_dir.json").write_text(json.dumps({"data_dir": "/tmp/\x1b[2J\x1b]8;;http://x\x1b\\"}))
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(data_dir))
    said = _eval_accuracy(theirs)[1]
    assert "\x1b" not in said and "/tmp/\\x1b[2J" in said


@pytest.mark.parametrize("content", ['{"data_dir": 7}', '{"data_dir": "relative/data"}', "[1, 2]", "{not json",
                                     "symlink"])
def test_an_unusable_record_is_ignored_with_its_reason(content, trained, tmp_path):
    run, data_dir = trained
    record = RunFolder(_copy(run, tmp_path)).data_dir_json
    record.unlink()
    if content == "symlink":
        secret = tmp_path / "secret.json"
        secret.write_text(json.dumps({"data_dir": str(data_dir)}))
        record.symlink_to(secret)
    else:
        record.write_text(content)
    recorded = RunFolder(record.parent).recorded_data_dir()
    assert recorded.folder is None and recorded.source == str(record) and str(record) in recorded.problem
    said = []
    assert resolve_data_dir(None, recorded, say=said.append) is None
    assert said[0] == f"{recorded.problem}; it is ignored"
    assert "symbolic link" in said[0] if content == "symlink" else True


def test_without_a_record_the_data_folder_is_found_as_before(tmp_path, monkeypatch):
    assert RunFolder(tmp_path).recorded_data_dir() is None
    said = []
    assert resolve_data_dir(None, None, say=said.append) is None
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None, None, say=said.append) == tmp_path
    assert said == []  # a run without data_dir.json (an older cnnzoo's) reads and says what it always did
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="from CNNZOO_DATA_DIR"):  # a named folder must still exist
        resolve_data_dir(None, RecordedDataDir(str(tmp_path / "gone"), "x"))
    assert resolve_data_dir(None, RecordedDataDir(str(tmp_path), "x")) == tmp_path


def test_predict_says_which_data_folder_it_reads(trained, tmp_path):
    run, data_dir = trained
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    result = invoke("predict", run, image)
    assert result.exit_code == 0, result.output
    assert f"data folder: {data_dir} (the one training used" in result.stderr


def test_resume_reads_the_recorded_folder(trained, tmp_path):
    run, data_dir = trained
    copy = _copy(run, tmp_path)
    result = invoke("train", "--resume", copy, "--epochs", 3)
    assert result.exit_code == 0, result.output
    assert f"data folder: {data_dir} (the one training used" in result.output
    assert json.loads((copy / "metrics.json").read_text())["epochs_completed"] == 3
    assert json.loads((copy / "data_dir.json").read_text()) == {"data_dir": str(data_dir)}
    assert os.path.isabs(json.loads((copy / "data_dir.json").read_text())["data_dir"])
