"""Streamed data (data.in_memory, image_folder streamed, tfrecord, `cnnzoo pack`, data.bad_files): real
training runs through the CLI on image folders made here. Streamed training sees the batches in-memory
training sees (so its history is the in-memory one), a resumed streamed run those of an uninterrupted
one, and a bad file either stops the run naming it or is skipped, counted and listed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tiny_runs import invoke

CONFIG = """\
name: streamed
input: {{shape: [24, 24, 3]}}
model:
  layers:
    - Conv2D: {{filters: 4, kernel_size: 3, activation: relu}}
    - MaxPooling2D: {{pool_size: 2}}
    - Dropout: {{rate: 0.2}}
    - GlobalAveragePooling2D
    - Dense: {{units: 3, activation: softmax}}
data: {{{data}}}
train: {{epochs: 3, batch_size: 8, learning_rate: 0.01}}
"""
COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def image_folder(root: Path, per_class: int = 20, classes: int = 3, size: int = 30) -> Path:
    """Class folders of JPEGs and PNGs whose mean brightness tells the class, so a tiny CNN learns them."""
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 70 * k, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.{'png' if i % 4 == 0 else 'jpg'}")
    return root


def config_file(tmp_path: Path, data: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(CONFIG.format(data=data))
    return path


def train(config: Path, runs: Path, *extra) -> tuple[Path, str]:
    result = invoke("train", config, "--runs-dir", runs, "--deterministic", *extra)
    assert result.exit_code == 0, result.output
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run, " ".join(result.output.split())


def history(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "history.csv")[COLUMNS]


def test_streamed_training_sees_the_in_memory_batches(tmp_path):
    folder = image_folder(tmp_path / "images")
    memory, said_memory = train(config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: true"),
                                tmp_path / "memory")
    streamed, said_streamed = train(config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: false"),
                                    tmp_path / "streamed")
    assert "in memory: data.in_memory: true" in said_memory
    assert "streamed from disk: data.in_memory: false" in said_streamed
    pd.testing.assert_frame_equal(history(memory), history(streamed), rtol=1e-5)
    records = [json.loads((r / "metrics.json").read_text()) for r in (memory, streamed)]
    assert records[0]["test"] == pytest.approx(records[1]["test"], rel=1e-5)
    assert records[1]["skipped_files"] == 0 and records[0].get("skipped_files") is None


def test_auto_decodes_small_data_and_streams_what_would_not_fit(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "images", per_class=8)
    config = config_file(tmp_path, f"dataset: image_folder, path: {folder}")
    _, said = train(config, tmp_path / "small", "--epochs", "1")
    assert "in memory: decoded" in said and "within half of the" in said
    # 24 images of 24x24x3 are 41 KB decoded: with 50 KB available they stream (--force: the model's own
    # estimate is far above 50 KB, and the check would refuse it)
    monkeypatch.setenv("CNNZOO_MEMORY_LIMIT", "50KB")
    run, said = train(config, tmp_path / "tight", "--epochs", "1", "--force")
    assert "streamed from disk: decoded it would take 41.5 KB, more than half of the 50.0 KB available" in said
    assert json.loads((run / "metrics.json").read_text())["skipped_files"] == 0


@pytest.mark.parametrize("source", ["folder", "tfrecord", "cropped"])
def test_a_resumed_streamed_run_sees_the_batches_of_an_uninterrupted_one(tmp_path, source):
    folder = image_folder(tmp_path / "images")
    if source == "cropped":  # the crops are drawn from (seed, epoch, image): a resume draws the same
        data = f"dataset: image_folder, path: {folder}, random_resized_crop: {{scale_min: 0.3}}"
    elif source == "tfrecord":
        packed = invoke("pack", folder, tmp_path / "packed", "--shard-mb", "1")
        assert packed.exit_code == 0, packed.output
        data = f"dataset: tfrecord, path: {tmp_path / 'packed'}"
    else:
        data = f"dataset: image_folder, path: {folder}, in_memory: false"
    config = config_file(tmp_path, data)
    whole, _ = train(config, tmp_path / "whole")
    split, _ = train(config, tmp_path / "split", "--epochs", "1")
    resumed = invoke("train", "--resume", split, "--epochs", "3", "--deterministic")
    assert resumed.exit_code == 0, resumed.output
    pd.testing.assert_frame_equal(history(whole), history(split), rtol=1e-5)


def test_pack_then_train_eval_and_predict_on_the_shards(tmp_path):
    folder = image_folder(tmp_path / "images")
    packed = invoke("pack", folder, tmp_path / "packed", "--size", "24x24", "--shard-mb", "1")
    assert packed.exit_code == 0, packed.output
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    assert manifest["classes"] == ["class_0", "class_1", "class_2"] and manifest["count"] == 60
    assert sum(s["count"] for s in manifest["shards"]) == 60 and len(manifest["labels"]) == 60
    assert set(manifest["labels"][:20]) == {0, 1, 2}  # shuffled: every shard holds every class
    run, said = train(config_file(tmp_path, f"dataset: tfrecord, path: {tmp_path / 'packed'}"), tmp_path / "runs")
    assert "TFRecord pack" in said and "streamed from its shards" in said
    record = json.loads((run / "metrics.json").read_text())
    assert record["train_samples"] + record["val_samples"] + record["test_samples"] == 60
    evaluated = invoke("eval", run, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["samples"] == record["test_samples"]
    assert result["metrics"]["accuracy"] == pytest.approx(record["test"]["accuracy"], abs=1e-6)
    predicted = invoke("predict", run, folder / "class_2" / "001.jpg", "--json")
    assert predicted.exit_code == 0 and "class_" in predicted.stdout, predicted.output


def test_manifest_less_shards_read_their_labels_once(tmp_path):
    folder = image_folder(tmp_path / "images", per_class=10)
    assert invoke("pack", folder, tmp_path / "packed").exit_code == 0
    (tmp_path / "packed" / "manifest.json").unlink()
    data = f"dataset: tfrecord, path: '{tmp_path / 'packed'}/*.tfrecord', classes: [a, b, c]"
    run, said = train(config_file(tmp_path, data), tmp_path / "runs", "--epochs", "1")
    assert "TFRecord 1 shard(s) (30 records)" in said
    assert json.loads((run / "metrics.json").read_text())["class_names"] == ["a", "b", "c"]
    assert list((tmp_path / "cache").glob("tfrecord-labels-*.npz"))
    (tmp_path / "names.txt").write_text("ant\nbee\n\ncat\n")
    named, _ = train(config_file(tmp_path, data.replace("[a, b, c]", str(tmp_path / "names.txt")), "n.yaml"),
                     tmp_path / "named", "--epochs", "1")
    assert json.loads((named / "metrics.json").read_text())["class_names"] == ["ant", "bee", "cat"]


@pytest.mark.parametrize("where, said", [
    ("file", "is not a file name in the folder"), ("label", "must hold one class index"),
    ("count", "holds 15 TFRecord records, but manifest.json says 14"),
    ("truncated", "not a complete TFRecord file"), ("label_key", "leave data.image_key and data.label_key out")])
def test_a_hostile_pack_is_refused(tmp_path, where, said):
    folder = image_folder(tmp_path / "images", per_class=5)
    assert invoke("pack", folder, tmp_path / "packed").exit_code == 0
    manifest = tmp_path / "packed" / "manifest.json"
    data = json.loads(manifest.read_text())
    (shard,) = data["shards"]
    if where == "file":
        shard["file"] = "../../etc/passwd"
    elif where == "label":
        data["labels"][0] = 99
    elif where == "count":  # the labels shortened to match: only the shard itself tells
        shard["count"] -= 1
        data["labels"].pop()
    elif where == "truncated":  # cut inside its last record, the manifest's size updated to match
        path = tmp_path / "packed" / shard["file"]
        path.write_bytes(path.read_bytes()[:-10])
        shard["bytes"] -= 10
    manifest.write_text(json.dumps(data))
    keys = ", label_key: image/filename" if where == "label_key" else ""
    result = invoke("train", config_file(tmp_path, f"dataset: tfrecord, path: {tmp_path / 'packed'}{keys}"),
                    "--runs-dir", tmp_path / "runs")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text and said in text, text


def test_the_targets_are_the_labels_the_splits_were_drawn_from(tmp_path):
    """A record's own label feature is not read back in training or eval: the manifest's labels are the
    targets (here all rewritten to class 0, so every true label in the confusion matrix is class 0)."""
    folder = image_folder(tmp_path / "images", per_class=10)
    assert invoke("pack", folder, tmp_path / "packed").exit_code == 0
    manifest = tmp_path / "packed" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["labels"] = [0] * len(data["labels"])
    manifest.write_text(json.dumps(data))
    run, _ = train(config_file(tmp_path, f"dataset: tfrecord, path: {tmp_path / 'packed'}"), tmp_path / "runs",
                   "--epochs", "1")
    result = json.loads(invoke("eval", run, "--json").stdout)
    matrix = np.array(result["confusion_matrix"])
    assert matrix[0].sum() == result["samples"] > 0 and matrix[1:].sum() == 0


def test_pack_never_touches_an_existing_folder(tmp_path):
    folder = image_folder(tmp_path / "images", per_class=3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    result = invoke("pack", folder, tmp_path / "out")
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


BAD = {"truncated": lambda p: p.write_bytes(p.read_bytes()[:100]), "empty": lambda p: p.write_bytes(b""),
       "text": lambda p: p.write_text("not an image at all"),
       "bomb": lambda p: Image.new("L", (8000, 8000)).save(p, "PNG")}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_file_fails_naming_it_or_is_skipped_counted_and_listed(tmp_path, kind):
    folder = image_folder(tmp_path / "images")
    bad = folder / "class_1" / "009.jpg"
    BAD[kind](bad)
    data = f"dataset: image_folder, path: {folder}, in_memory: false, validation_split: 0, test_split: 0"
    failed = invoke("train", config_file(tmp_path, data), "--runs-dir", tmp_path / "fail", "--epochs", "1")
    text = " ".join(failed.output.split())
    assert failed.exit_code == 2 and "Traceback" not in text, text
    assert f"{bad}: not decodable as JPEG, PNG, BMP or GIF" in text and "data.bad_files: skip" in text

    run, said = train(config_file(tmp_path, data + ", bad_files: skip"), tmp_path / "skip", "--epochs", "2")
    assert "1 file(s) could not be decoded and were skipped" in said
    assert json.loads((run / "metrics.json").read_text())["skipped_files"] == 1
    listed = pd.read_csv(run / "skipped_files.csv")
    assert list(listed["file"]) == [str(bad)]
    assert len(pd.read_csv(run / "history.csv")) == 2  # both epochs ran their steps


def test_a_process_stopped_by_a_bad_file_exits(tmp_path):
    """As a real process: the decode threads of a streamed iterator freed during interpreter shutdown would
    wait for the GIL forever, so the error must end the process, not hang it."""
    folder = image_folder(tmp_path / "images", per_class=8)
    (folder / "class_0" / "003.jpg").write_text("not an image")
    config = config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: false, validation_split: 0.3")
    done = subprocess.run([sys.executable, "-m", "cnnzoo", "train", str(config), "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200", "CNNZOO_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "003.jpg: not decodable" in done.stderr and "Traceback" not in done.stderr


def test_a_split_skipped_down_to_no_image_stops_instead_of_spinning(tmp_path):
    """Epochs with no batch would repeat forever without training: the run stops, naming the count (a
    real process, with a timeout, so a regression fails instead of hanging the suite)."""
    folder = image_folder(tmp_path / "images", per_class=6)
    for f in folder.rglob("*.*"):
        f.write_text("not an image")
    config = config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: false, "
                                   "validation_split: 0, test_split: 0, bad_files: skip")
    done = subprocess.run([sys.executable, "-m", "cnnzoo", "train", str(config), "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200", "CNNZOO_CACHE_DIR": str(tmp_path / "cache")})
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in said, done.stderr[-2000:]
    assert "18 of the 18 images of this split could not be decoded" in said and "leaves none to train" in said


def test_a_skipped_test_file_leaves_eval_aligned(tmp_path):
    folder = image_folder(tmp_path / "images")
    run, _ = train(config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: false, "
                                         "bad_files: skip"), tmp_path / "runs", "--epochs", "1")
    test_files = [f for f in sorted(folder.rglob("*.*"))][::7]
    for f in test_files:
        f.write_bytes(b"")
    evaluated = invoke("eval", run, "--json", "--split", "test")
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    skipped = result.get("skipped_files", [])
    assert result["samples"] == json.loads((run / "metrics.json").read_text())["test_samples"] - len(skipped)
    assert sum(result["confusion_matrix"], []) and sum(map(sum, result["confusion_matrix"])) == result["samples"]


@pytest.mark.parametrize("data, where, reason", [
    ("dataset: mnist, in_memory: false", "data.in_memory", "streaming from disk is for image_folder, tfrecord, tfds"),
    ("dataset: tfrecord", "data.path", "a tfrecord dataset needs `path:`"),
    ("dataset: image_folder, path: x, bad_files: ignore", "data.bad_files", "fail"),
    ("dataset: mnist, random_resized_crop: true", "data.random_resized_crop", "needs streamed images"),
    ("dataset: image_folder, path: x, in_memory: true, random_resized_crop: true", "data.random_resized_crop",
     "needs streamed images"),
    ("dataset: image_folder, path: x, random_resized_crop: {scale_min: 0.9, scale_max: 0.5}",
     "data.random_resized_crop", "min <= max"),
])
def test_streaming_options_are_checked_where_written(tmp_path, data, where, reason):
    result = invoke("summary", config_file(tmp_path, data))
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and where in text and reason in text, text


def test_the_listing_is_cached_until_a_folder_changes(tmp_path):
    from cnnzoo.data.listing import list_images

    folder = image_folder(tmp_path / "images", per_class=4)
    first = list_images(folder, tmp_path / "cache")
    again = list_images(folder, tmp_path / "cache")
    assert not first.cached and again.cached and list(again.paths) == list(first.paths)
    shutil.copy(folder / "class_0" / "001.jpg", folder / "class_0" / "zzz.jpg")
    os.utime(folder / "class_0", ns=(1, 1))  # a folder's mtime changes when a file arrives; make sure it differs
    changed = list_images(folder, tmp_path / "cache")
    assert not changed.cached and len(changed.paths) == len(first.paths) + 1


def test_predict_on_many_files_prints_as_it_goes(tmp_path, monkeypatch):
    import cnnzoo.deploy.predict as predict

    folder = image_folder(tmp_path / "images", per_class=9)
    run, _ = train(config_file(tmp_path, f"dataset: image_folder, path: {folder}"), tmp_path / "runs", "--epochs", "1")
    monkeypatch.setattr(predict, "CHUNK", 10)  # 27 files: three chunks of at most 10 decoded images each
    seen = []
    original = predict.read_items
    monkeypatch.setattr(predict, "read_items", lambda items, *a, **k: seen.append(len(items)) or original(items, *a, **k))
    result = invoke("predict", run, folder)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    assert seen == [10, 10, 7]
    assert "inputs 1 to 10 of 27" in text and "inputs 21 to 27 of 27" in text and "27 predicted, 0 failed" in text


def test_the_memory_estimate_of_a_stream_does_not_grow_with_the_images(tmp_path):
    from cnnzoo.config import load_config
    from cnnzoo.model.builder import build_model
    from cnnzoo.model.memory import estimate_training

    estimates = {}
    for count in (5, 50):
        folder = image_folder(tmp_path / f"images_{count}", per_class=count)
        config = load_config(config_file(tmp_path, f"dataset: image_folder, path: {folder}, in_memory: false",
                                         f"c{count}.yaml"), ["--set", "input.shape=[224,224,3]"][1:])
        estimates[count] = estimate_training(config, build_model(config, allocate=False).model).parts["dataset"]
    # 10x the images: only the references (a relative path and a label each) grow, not 150 KB per image
    assert estimates[50] - estimates[5] < 135 * 100
    assert estimates[5] >= 2 * 16 * 224 * 224 * 3  # the images being decoded at once are counted


def test_a_random_resized_crop_stays_in_its_ranges_and_decodes_at_a_reduced_scale(tmp_path):
    from cnnzoo.config.options import CropSpec
    from cnnzoo.data.images import crop_box, decode_crop, decode_image

    crop = CropSpec(scale_min=0.2, scale_max=0.6, ratio_min=0.5, ratio_max=2.0)
    rng = np.random.default_rng(0)
    for _ in range(500):
        left, top, w, h = crop_box(640, 480, rng, crop)
        assert 0 <= left and left + w <= 640 and 0 <= top and top + h <= 480
        assert 0.19 * 640 * 480 <= w * h <= 0.61 * 640 * 480 and 0.49 <= w / h <= 2.05
    assert crop_box(10, 1000, rng, CropSpec(scale_min=0.99, ratio_min=2.0, ratio_max=3.0)) == (0, 497, 10, 5)  # no draw fits: the centred box at ratio 2
    photo = tmp_path / "big.jpg"
    gradient = np.linspace(0, 255, 2000, dtype=np.uint8)[None, :, None].repeat(1000, 0).repeat(3, 2)
    Image.fromarray(gradient).save(photo, quality=95)
    left_half = decode_crop(str(photo), (32, 32, 3), np.random.default_rng(1),
                            CropSpec(scale_min=0.5, scale_max=0.5, ratio_min=1.0, ratio_max=1.0))
    assert left_half.shape == (32, 32, 3) and left_half.std() > 10  # a 707x707 box of the gradient, not a blur
    assert abs(float(decode_image(str(photo), (32, 32, 3)).mean()) - 127.5) < 3


def test_pack_into_a_folder_it_cannot_create_is_exit_2(tmp_path):
    folder = image_folder(tmp_path / "images", per_class=2)
    (tmp_path / "a-file").write_text("not a folder")
    result = invoke("pack", folder, tmp_path / "a-file" / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text and "cannot create it" in text, text
