"""`cnnzoo export --out` replaces nothing the user did not ask to replace: an existing target needs
--overwrite (and a folder that is not an export is never replaced), config.yaml and export.json are written
beside the target only where they do not overwrite a file of the user's, a wrong suffix is one error line,
and a symbolic link as the target is replaced itself, never followed."""

from __future__ import annotations

import json
import os

import pytest

from tiny_runs import invoke, tiny_setup, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_target")
    config, data_dir = tiny_setup(root)
    return train_tiny(config, root / "runs", data_dir, "--epochs", "1"), data_dir


def _export(trained, *args):
    run, data_dir = trained
    return invoke("export", run, "--data-dir", data_dir, "--samples", "8", *args)


def test_an_existing_target_is_refused_without_overwrite_and_replaced_with_it(trained, tmp_path):
    target = tmp_path / "mine.keras"
    target.write_text("the user's file")
    refused = _export(trained, "--format", "keras", "--out", target)
    assert refused.exit_code == 2 and "pass --overwrite" in refused.output, refused.output
    assert target.read_text() == "the user's file"
    replaced = _export(trained, "--format", "keras", "--out", target, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert target.stat().st_size > 1000  # a real .keras archive now


def test_side_files_never_overwrite_the_users_files(trained, tmp_path):
    folder = tmp_path / "desk"
    folder.mkdir()
    (folder / "config.yaml").write_text("mine: true\n")
    (folder / "notes.txt").write_text("keep me")
    result = _export(trained, "--format", "keras", "--out", folder / "model.keras", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["side_files"] == ["export.json"]
    assert (folder / "config.yaml").read_text() == "mine: true\n" and (folder / "notes.txt").read_text() == "keep me"
    fresh = tmp_path / "new-folder" / "model.keras"  # a folder cnnzoo creates gets both side files
    assert _export(trained, "--format", "keras", "--out", fresh).exit_code == 0
    assert {p.name for p in fresh.parent.iterdir()} == {"model.keras", "config.yaml", "export.json"}


def test_a_folder_that_is_not_an_export_is_never_replaced(trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    result = _export(trained, "--format", "savedmodel", "--out", folder, "--overwrite")
    assert result.exit_code == 2 and "never replaces" in result.output, result.output
    assert (folder / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_a_wrong_suffix_is_one_error_line_before_any_work(trained, tmp_path):
    result = _export(trained, "--format", "tflite", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "ending in .tflite" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


def test_a_symlink_target_is_replaced_itself_never_what_it_points_to(trained, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    link = tmp_path / "model.keras"
    os.symlink(victim, link)
    result = _export(trained, "--format", "keras", "--out", link, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (victim / "precious.txt").read_text() == "keep" and not link.is_symlink()
