"""The choices the CLI offers come from the registries that act on them, so a new export format,
quantisation, checkpoint or split cannot be added in one place and missed in the other."""

from __future__ import annotations

from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.cli.deploy import ExportFormat, Quantize
from cnnzoo.cli.pictures import Checkpoint, Split
from cnnzoo.deploy import export
from cnnzoo.deploy.formats import EXPORT_FORMATS, QUANTIZATIONS
from cnnzoo.evaluation import SPLITS
from cnnzoo.runs.folder import CHECKPOINTS


def test_export_choices_are_the_export_registry():
    assert tuple(export.FORMATS) == EXPORT_FORMATS == tuple(f.value for f in ExportFormat)
    assert tuple(export.THRESHOLDS) == QUANTIZATIONS == tuple(q.value for q in Quantize)
    assert export.FORMATS["tflite"].quantizations == QUANTIZATIONS


def test_checkpoint_and_split_choices_are_the_run_folders_and_evaluations():
    assert tuple(c.value for c in Checkpoint) == CHECKPOINTS
    assert tuple(s.value for s in Split) == SPLITS


def test_help_lists_the_registry_names():
    for command, names in (("export", EXPORT_FORMATS + QUANTIZATIONS), ("eval", CHECKPOINTS + SPLITS)):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert all(name in text for name in names), command


def test_a_wrong_checkpoint_of_predict_names_the_choices(tmp_path):
    result = CliRunner().invoke(app, ["predict", str(tmp_path), "x.png", "--checkpoint", "worst"])
    assert result.exit_code == 2
    assert "--checkpoint must be best or last (got 'worst')" in result.output
