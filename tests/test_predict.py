"""`cnnzoo predict`: the run's own test examples, written back as files, get eval's probabilities;
every kind of bad input is one line, the rest is still predicted, and the exit code says how it went.
The test examples come from the generated stand-in for the shared datasets (`generated_data_dir`, conftest.py)."""

from __future__ import annotations

import csv
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_fixtures import REPO, saved_run
from typer.testing import CliRunner

from cnnzoo.cli import app

TINY_FLOWERS = """
name: tiny_flowers
input: {shape: [32, 32, 3]}
model:
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, activation: relu}
    - GlobalAveragePooling2D
    - Dense: {units: 17, activation: softmax}
data: {dataset: oxflower17}
"""


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))


def predict(*args: str):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


def eval_probabilities(run: Path, data_dir: Path) -> tuple[np.ndarray, list[str]]:
    """What `cnnzoo eval` predicts on the run's test split, through its own pipeline."""
    from cnnzoo import data as datasets
    from cnnzoo.config import load_config
    from cnnzoo.deploy.predict import class_probabilities
    from cnnzoo.runs.folder import load_checkpoint
    from cnnzoo.training.labels import plan_labels
    from cnnzoo.training.setup import make_pipelines

    config = load_config(run / "config.yaml")
    model = load_checkpoint(run / "best.keras")
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                   seed=config.train.seed, progress=False)
    pipes = make_pipelines(config, splits, plan_labels(config, model, splits.num_classes))
    return class_probabilities(model.predict(pipes.test, verbose=0), splits.num_classes), splits.class_names


def check_against_eval(result, expected: np.ndarray, names: list[str]) -> None:
    """predict --json --top-k K gives eval's full distribution, input by input."""
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert len(entries) == len(expected)
    for entry, probs in zip(entries, expected):
        got = {t["class"]: t["probability"] for t in entry["top"]}
        assert list(got)[0] == names[int(np.argmax(probs))]
        np.testing.assert_allclose([got[n] for n in names], probs, atol=1e-5)


def test_mnist_digits_as_png_padded_for_lenet5_match_eval(tmp_path, generated_data_dir):
    run = saved_run(tmp_path / "run", REPO / "configs" / "lenet5.yaml")
    expected, names = eval_probabilities(run, generated_data_dir)
    with np.load(generated_data_dir / "mnist.npz") as mnist:
        digits = mnist["x_test"][:12]  # the official test split, in order; 28x28, padded to 32x32
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(folder / f"{i:02d}.png")
    (folder / "README.txt").write_text("skipped: not an image by its extension\n")
    result = predict(run, folder, "--json", "--top-k", "10", "--data-dir", generated_data_dir)
    check_against_eval(result, expected[:12], names)


def test_forda_rows_as_tsv_csv_and_npy_match_eval(tmp_path, generated_data_dir):
    run = saved_run(tmp_path / "run", REPO / "configs" / "cnn1d.yaml")
    expected, names = eval_probabilities(run, generated_data_dir)
    rows = np.loadtxt(generated_data_dir / "ucr" / "FordA" / "FordA_TEST.tsv", max_rows=6)
    np.savetxt(tmp_path / "labelled.tsv", rows[:3], delimiter="\t")  # UCR layout: label first
    np.savetxt(tmp_path / "bare.csv", rows[3:5, 1:], delimiter=",")  # no label column
    np.save(tmp_path / "one.npy", rows[5, 1:].astype(np.float32))
    result = predict(run, tmp_path / "labelled.tsv", tmp_path / "bare.csv", tmp_path / "one.npy", "--json",
                     "--data-dir", generated_data_dir)
    check_against_eval(result, expected[:6], names)
    assert [e["file"].rsplit("/", 1)[-1] for e in json.loads(result.stdout)] == [
        "labelled.tsv:1", "labelled.tsv:2", "labelled.tsv:3", "bare.csv:1", "bare.csv:2", "one.npy[0]"]


def test_flowers_jpegs_of_the_test_split_match_eval(tmp_path, generated_data_dir):
    from cnnzoo.data.flowers17 import PER_CLASS, image_number
    from cnnzoo.data.splits import three_way_split

    (tmp_path / "tiny_flowers.yaml").write_text(TINY_FLOWERS)
    run = saved_run(tmp_path / "run", tmp_path / "tiny_flowers.yaml")
    expected, names = eval_probabilities(run, generated_data_dir)
    with tarfile.open(generated_data_dir / "17flowers.tgz") as tar:
        # the loader's order: the archive's images by number, each labelled by its place (80 a class)
        numbers = sorted(n for n in map(image_number, tar.getnames()) if n)
        _, _, test = three_way_split((np.array(numbers) - 1) // PER_CLASS, 0.2, 0.2, 42)
        wanted = {f"jpg/image_{numbers[i]:04d}.jpg": k for k, i in enumerate(test[:8])}
        for member in tar:
            if member.name in wanted:
                (tmp_path / f"{wanted[member.name]:02d}.jpg").write_bytes(tar.extractfile(member).read())
    result = predict(run, str(tmp_path / "*.jpg"), "--json", "--top-k", "17", "--data-dir", generated_data_dir)
    check_against_eval(result, expected[:8], names)


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory) -> Path:
    config = tmp_path_factory.mktemp("cfg") / "digits.yaml"
    config.write_text("name: digits\ninput: {shape: [28, 28, 1]}\nmodel:\n  layers: [Flatten, Dense: {units: 10, "
                      "activation: softmax}]\ndata: {dataset: mnist}\n")
    return saved_run(tmp_path_factory.mktemp("runs") / "digits-run", config)


@pytest.fixture
def inputs(tmp_path) -> Path:
    """Good images of several formats and sizes, and one bad input of each kind."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(rng.integers(0, 255, (50, 40, 3), np.uint8)).save(tmp_path / "colour.jpg")
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), np.uint8)).save(tmp_path / "small.bmp")
    frames = [Image.fromarray(rng.integers(0, 255, (30, 30), np.uint8)) for _ in range(2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    good = (tmp_path / "colour.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.jpg").write_text("this is not a JPEG\n")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_bad_inputs_are_one_line_each_and_the_rest_is_predicted(digit_run, inputs):
    result = predict(digit_run, inputs / "grey.png", inputs / "colour.jpg", inputs / "small.bmp", inputs / "anim.gif",
                     inputs / "truncated.jpg", inputs / "text.jpg", inputs / "empty", inputs / "missing.png",
                     str(inputs / "nothing*.png"), "--json")
    assert result.exit_code == 1, result.output
    entries = {Path(e["file"]).name: e for e in json.loads(result.stdout)}
    assert {n for n, e in entries.items() if "top" in e} == {"grey.png", "colour.jpg", "small.bmp", "anim.gif"}
    assert "truncated or not an image" in entries["truncated.jpg"]["error"]
    assert "truncated or not an image" in entries["text.jpg"]["error"]
    assert entries["empty"]["error"] == "the folder holds no jpg/jpeg/png/bmp/gif files"
    assert entries["missing.png"]["error"] == "no such file or folder"
    assert entries["nothing*.png"]["error"] == "the pattern matches no files"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5 and "Traceback" not in result.output
    assert "4 predicted, 5 failed;" in result.stderr


def test_exit_code_2_when_no_input_can_be_read(digit_run, inputs):
    result = predict(digit_run, inputs / "text.jpg", inputs / "missing.png")
    assert result.exit_code == 2
    assert "error:" in result.stderr and "Traceback" not in result.output


def test_series_of_the_wrong_length_fail_alone(tmp_path):
    config = tmp_path / "series.yaml"
    config.write_text("name: series\ninput: {shape: [8, 1]}\nmodel:\n  layers: [Flatten, Dense: {units: 1, "
                      "activation: sigmoid}]\ndata: {dataset: ucr, name: Tiny}\n")
    folder = tmp_path / "ucr" / "Tiny"
    folder.mkdir(parents=True)
    for part in ("TRAIN", "TEST"):
        np.savetxt(folder / f"Tiny_{part}.tsv", np.c_[[1, 2, 1, 2], np.ones((4, 8))], delimiter="\t")
    run = saved_run(tmp_path / "run", config)
    np.savetxt(tmp_path / "ok.tsv", np.ones((2, 8)), delimiter="\t")
    np.savetxt(tmp_path / "long.tsv", np.ones((2, 12)), delimiter="\t")
    np.save(tmp_path / "bad.npy", np.ones((3, 5)))
    result = predict(run, tmp_path / "ok.tsv", tmp_path / "long.tsv", tmp_path / "bad.npy", "--json",
                     "--data-dir", tmp_path)
    assert result.exit_code == 1, result.output
    entries = {Path(e["file"]).name: e for e in json.loads(result.stdout)}
    assert [e["top"][0]["class"] in ("1", "2") for n, e in entries.items() if n.startswith("ok")] == [True, True]
    assert "rows hold 12 values, but this run's series have 8 values" in entries["long.tsv"]["error"]
    assert "shape [3, 5]" in entries["bad.npy"]["error"]


def test_table_csv_and_a_keras_file_with_its_config(digit_run, inputs, tmp_path):
    keras_file = tmp_path / "model.keras"
    shutil.copy(digit_run / "best.keras", keras_file)
    refused = predict(keras_file, inputs / "grey.png")
    assert refused.exit_code == 2 and "pass --config CONFIG" in refused.stderr
    result = predict(keras_file, inputs / "grey.png", inputs / "colour.jpg", inputs / "text.jpg",
                     "--config", digit_run / "config.yaml", "--top-k", "2", "--csv", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "grey.png" in result.stdout and "top 2" in result.stdout
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert [Path(r["file"]).name for r in rows] == ["grey.png", "colour.jpg", "text.jpg"]
    assert float(rows[0]["probability_1"]) >= float(rows[0]["probability_2"]) > 0
    assert rows[2]["class_1"] == "" and "not an image" in rows[2]["error"]
    assert "tta" not in rows[0]  # the column comes only with a test-time augmentation


def test_flip_tta_averages_each_image_with_its_mirror(digit_run, tmp_path):
    """Lossless PNGs at the run's own size: --tta flip on an image gives the mean of the plain
    predictions of the image and of its mirror, class by class."""
    pixels = np.random.default_rng(1).integers(0, 255, (28, 28), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    Image.fromarray(pixels[:, ::-1]).save(tmp_path / "mirror.png")

    def probabilities(result) -> list[dict[str, float]]:
        assert result.exit_code == 0, result.output
        return [{t["class"]: t["probability"] for t in entry["top"]} for entry in json.loads(result.stdout)]

    plain, mirror = probabilities(predict(digit_run, tmp_path / "digit.png", tmp_path / "mirror.png", "--json",
                                          "--top-k", "10"))
    (tmp_path / "text.png").write_text("not an image")
    flipped = predict(digit_run, tmp_path / "digit.png", tmp_path / "text.png", "--json", "--top-k", "10",
                      "--tta", "flip", "--csv", tmp_path / "flip.csv")
    assert flipped.exit_code == 1, flipped.output  # one input failed
    predicted, failed = json.loads(flipped.stdout)
    averaged = {t["class"]: t["probability"] for t in predicted["top"]}
    assert predicted["tta"] == "flip" and "tta" not in failed and "error" in failed  # the saved output says so
    row, failed_row = csv.DictReader(open(tmp_path / "flip.csv"))
    assert row["tta"] == "flip" and float(row["probability_1"]) == pytest.approx(max(averaged.values()), abs=1e-5)
    assert failed_row["tta"] == "" and failed_row["error"]
    assert all("tta" not in entry for entry in json.loads(predict(digit_run, tmp_path / "digit.png",
                                                                  "--json").stdout))
    assert max(abs(plain[name] - mirror[name]) for name in plain) > 1e-3  # the mirror is another input to it
    for name in plain:
        assert averaged[name] == pytest.approx((plain[name] + mirror[name]) / 2, abs=1e-6)
    assert "flip test-time augmentation" in flipped.stderr


def test_tta_refusals_name_the_fix(digit_run, tmp_path):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digit.png")
    unknown = predict(digit_run, tmp_path / "digit.png", "--tta", "rotate")
    assert unknown.exit_code == 2 and "--tta must be one of none, flip" in unknown.stderr
    config = tmp_path / "series.yaml"
    config.write_text("name: series\ninput: {shape: [8, 1]}\nmodel:\n  layers: [Flatten, Dense: {units: 2, "
                      "activation: softmax}]\ndata: {dataset: ucr, name: Tiny}\n")
    series = predict(saved_run(tmp_path / "run", config), tmp_path / "digit.png", "--tta", "flip")
    assert series.exit_code == 2 and "Traceback" not in series.output
    assert "best.keras: --tta flip mirrors images" in series.stderr and "leave out --tta" in series.stderr
