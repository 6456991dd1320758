"""Cross-validation through the CLI on the shipped Iris CSV: K stratified folds as sub-folders of one run
folder, cv.csv and cv.json (mean ± std), each fold evaluated on the test split, resume per fold."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tiny_runs import invoke


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("cv") / "runs"
    result = invoke("train", "iris_mlp", "--folds", "3", "--epochs", "1", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    (parent,) = runs.iterdir()
    return parent, result.output


def test_folds_are_sub_folders_with_a_summary(cv_run):
    parent, output = cv_run
    assert all(f"fold {i}/3" in output for i in (1, 2, 3))
    assert sorted(p.name for p in parent.iterdir() if p.is_dir()) == ["fold-1", "fold-2", "fold-3"]
    rows = list(csv.DictReader((parent / "cv.csv").open()))
    assert [r["fold"] for r in rows] == ["1", "2", "3"]
    summary = json.loads((parent / "cv.json").read_text())["summary"]
    accuracies = [float(r["val_accuracy"]) for r in rows]
    assert summary["val_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["val_accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert {"test_accuracy", "test_loss", "val_loss"} <= set(summary)
    assert "mean" in output and "val_accuracy" in output


def test_folds_partition_the_training_data_stratified(cv_run):
    parent, _ = cv_run
    folds = [json.loads((parent / f"fold-{i}" / "metrics.json").read_text()) for i in (1, 2, 3)]
    pool = folds[0]["train_samples"] + folds[0]["val_samples"]
    assert pool == 120 and sum(f["val_samples"] for f in folds) == pool  # the 30 test flowers stay out
    assert all(f["test_samples"] == 30 and f["test"] for f in folds)
    from cnnzoo import data as datasets
    from cnnzoo.config import load_config

    config = load_config(parent / "fold-2" / "config.yaml")
    assert config.data.fold == (2, 3)
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=None, seed=config.train.seed)
    per_species = np.bincount(splits.y_val)
    assert len(per_species) == 3 and per_species.max() - per_species.min() <= 1  # 40 flowers: 13 or 14 of each
    evaluated = invoke("eval", parent / "fold-2", "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["samples"] == 30


def test_resume_keeps_finished_folds_and_trains_the_missing_one(cv_run):
    import shutil

    parent, _ = cv_run
    before = (parent / "fold-1" / "metrics.json").read_text()
    shutil.rmtree(parent / "fold-3")
    result = invoke("train", "--resume", parent)
    assert result.exit_code == 0, result.output
    assert "fold 1/3 is complete; kept" in result.output and (parent / "fold-3" / "best.keras").exists()
    assert (parent / "fold-1" / "metrics.json").read_text() == before
    assert len(list(csv.DictReader((parent / "cv.csv").open()))) == 3
