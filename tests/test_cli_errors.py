"""Every CLI argument mistake gets a one-line reason and exit code 2, never a traceback.

The run folders here are made by hand (a config.yaml and whatever damage the case needs): the
commands must refuse them before any training or data loading could matter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app

REPO = Path(__file__).resolve().parent.parent
LENET = REPO / "configs" / "lenet.yaml"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working directory with a file, an empty folder and a few damaged run folders."""
    monkeypatch.delenv("CNNZOO_DATA_DIR", raising=False)  # CI gives a relative path; no case needs data
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("not a config\n")
    Path("empty").mkdir()
    for name in ("run_bare", "run_bad_best", "run_bad_history", "run_empty_history", "run_gappy_history"):
        Path(name).mkdir()
        shutil.copy(LENET, Path(name) / "config.yaml")
    Path("run_bad_best/best.keras").write_bytes(b"PK\x03\x04 truncated")
    Path("run_bad_history/history.csv").write_text("epoch,loss\n1,0.5\n2,oops\n")
    Path("run_empty_history/history.csv").write_text("")
    Path("run_gappy_history/history.csv").write_text("epoch,loss\n1,0.5\n3,0.4\n")
    return tmp_path


CASES = [
    # (arguments, words the one-line reason must contain)
    (["summary", "missing.yaml"], "config file not found"),
    (["summary", "empty"], "is a directory, not a config file"),
    (["summary", "notes.txt"], "notes.txt"),
    (["bench", "missing.yaml"], "config file not found"),
    (["train", "missing.yaml"], "config file not found"),
    (["train", "missing.yaml", "--data-dir", "nowhere"], "config file not found"),  # the config's error first
    (["train", "--resume", "missing", "--data-dir", "nowhere"], "no such run folder"),
    (["train", str(LENET), "--data-dir", "nowhere"], "the data directory nowhere (from --data-dir)"),
    (["train", "empty"], "is a directory, not a config file"),
    (["train"], "give either a CONFIG"),
    (["train", str(LENET), "--resume", "run_bare"], "give either a CONFIG"),
    (["train", str(LENET), "--runs-dir", "notes.txt"], "the runs directory is a file"),
    (["train", "--resume", "missing"], "no such run folder"),
    (["train", "--resume", "notes.txt"], "is a file, not a run folder"),
    (["train", "--resume", "empty"], "has no config.yaml"),
    (["train", "--resume", "run_bad_history"], "not a number"),
    (["train", "--resume", "run_gappy_history"], "not 1, 2, 3"),
    (["train", "--resume", "run_bare", "--seed", "3"], "cannot change a run being resumed"),
    (["eval", "missing"], "no such run folder"),
    (["eval", "notes.txt"], "is a file, not a run folder"),
    (["eval", "empty"], "has no config.yaml"),
    (["eval", "run_bare"], "best checkpoint is missing"),
    (["eval", "run_bare", "--checkpoint", "last"], "last checkpoint is missing"),
    (["eval", "run_bad_best"], "not a complete .keras (zip) archive"),
    (["eval", "run_bad_best", "--checkpoint", "middle"], "--checkpoint must be best or last (got 'middle')"),
    (["eval", "run_bad_best", "--split", "train"], "--split must be test or val (got 'train')"),
    (["plot", "missing"], "no such run folder"),
    (["plot", "empty"], "has no config.yaml"),
    (["plot", "run_bare"], "history file is missing"),
    (["plot", "run_empty_history"], "history file is empty"),
    (["plot", "run_bad_history"], "run_bad_history/history.csv:3: column 'loss' holds 'oops'"),
    (["plot", "run_gappy_history"], "not 1, 2, 3"),
    (["plot", "run_bad_history", "run_bare"], "history"),
]


@pytest.mark.parametrize("args, reason", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_argument_mistakes_get_one_line_reasons(args, reason, place):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, (SystemExit, type(None)))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert reason in lines[0]
