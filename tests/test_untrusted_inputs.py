"""Inputs made by someone else, round 2: an image file is decoded only in a format cnnzoo documents (a
PostScript file named .png would reach Ghostscript), a damaged standardize.json is one located error, and a
sweep whose grid multiplies out to billions of trials is refused before one is built."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.data.images import IMAGE_FORMATS, decode_image
from cnnzoo.data.inputs import photo_pixels
from cnnzoo.data.standardize import for_new_inputs, recorded
from cnnzoo.errors import RunError
from cnnzoo.training.sweep_space import MAX_TRIALS, SweepError, make_trials, parse_grid

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"


def test_postscript_named_png_is_not_decoded(tmp_path):
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # what Pillow would do with it unasked
    fake = tmp_path / "cat.png"
    fake.write_bytes(EPS)
    assert decode_image(EPS, (8, 8, 3)) is None and decode_image(str(fake), (8, 8, 3)) is None
    with pytest.raises(Exception, match="cannot be decoded as an image"):
        photo_pixels(fake, (8, 8, 3))


@pytest.mark.parametrize("kind", IMAGE_FORMATS)
def test_the_documented_formats_still_decode(kind):
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(buffer, format=kind)
    pixels = decode_image(buffer.getvalue(), (8, 8, 3))
    assert pixels is not None and pixels.shape == (8, 8, 3)


@pytest.mark.parametrize("content", ["{not json", '{"mean": [1, 2]}', '{"mean": [1, "x"], "std": [1, 1]}',
                                     '{"mean": [[1]], "std": [[1]]}', "[1, 2]"])
def test_a_damaged_standardize_json_is_one_located_error(tmp_path, content):
    path = tmp_path / "standardize.json"
    path.write_text(content)
    with pytest.raises(RunError, match="is not the statistics cnnzoo records") as raised:
        recorded(path)
    assert str(path) in str(raised.value)


def test_recorded_statistics_are_applied(tmp_path):
    path = tmp_path / "standardize.json"
    path.write_text(json.dumps({"mean": [1.0, 2.0], "std": [2.0, 4.0]}))

    class Spec:
        standardize = True

    out = for_new_inputs(np.array([[3.0, 6.0]]), Spec(), path)
    assert np.allclose(out, [[1.0, 1.0]])


def test_a_grid_of_billions_of_trials_is_refused_before_any_is_built():
    params = [parse_grid(f"train.k{i}=[{','.join(str(v) for v in range(10))}]") for i in range(10)]
    with pytest.raises(SweepError, match="has 10,000,000,000 trials"):
        make_trials(params, None, 0)
    with pytest.raises(SweepError, match=f"more than the {MAX_TRIALS:,}"):
        make_trials(params[:1], MAX_TRIALS + 1, 0)
    assert len(make_trials(params[:2], None, 0)) == 100


@pytest.mark.parametrize("text, reason", [
    ("round(x, -100000000)", "round's digits must be an integer from -20 to 20"),  # took 430 s of CPU
    ("round(x, 1.5)", "round's digits must be an integer"),
    ("-1e400", "is not a finite number"),
    ("1e400 - 1e400", "is not a finite number"),
    ("-" + "9" * 400, "a 400-digit number is too large"),
    ("int(1e300) + 0", "too large"),
    ("max(x, 10000000000000000)", r"the result 1e\+16 is too large"),
])
def test_every_expression_value_is_bounded(text, reason):
    import time

    from cnnzoo.config.expr import ExprError, evaluate, parse

    started = time.perf_counter()
    with pytest.raises(ExprError, match=reason):
        evaluate(parse(text), {"x": 12345}, text)
    assert time.perf_counter() - started < 1.0


def test_dollar_signs_in_names_are_text_in_every_picture(tmp_path):
    import pandas as pd

    from cnnzoo.runs.plots import plot_confusion_matrix, plot_metric

    name = "run$\\frac{$x"  # malformed mathtext: matplotlib's parser raised on it
    history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6]})
    assert plot_metric({name: history}, "loss", tmp_path / "loss.png", {name: 1}).stat().st_size > 0
    matrix = np.array([[3, 1], [0, 4]])
    plot_confusion_matrix(matrix, ["$\\sqrt{", "b$"], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 0


def _npy_header(shape) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_npz_whose_header_announces_more_than_it_holds_is_refused(tmp_path):
    import zipfile

    from cnnzoo.data import DataSpec, load_dataset
    from cnnzoo.errors import DataError

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", _npy_header((10**6, 10**6)) + b"\0" * 64)  # announces 3.6 TiB
        archive.writestr("y_train.npy", _npy_header((2,)) + b"\0" * 8)
    with pytest.raises(DataError, match="announces 4,000,000,000,000 bytes"):
        load_dataset(DataSpec("npz", path=str(path)), input_shape=(4,), data_dir=tmp_path, seed=0)


def test_an_npz_member_bigger_than_the_bound_is_refused_before_decompressing(tmp_path, monkeypatch):
    import zipfile

    from cnnzoo.data import DataSpec, load_dataset, npy_headers
    from cnnzoo.errors import DataError

    monkeypatch.setattr(npy_headers, "MAX_MEMBER_BYTES", 1000)  # the real bound is 1 GiB: too big to write here
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x_train=np.zeros((400, 4), np.float32), y_train=np.zeros(400, np.int64))
    assert zipfile.ZipFile(path).getinfo("x_train.npy").file_size > 1000
    with pytest.raises(DataError, match="would decompress to"):
        load_dataset(DataSpec("npz", path=str(path)), input_shape=(4,), data_dir=tmp_path, seed=0)


def test_an_npy_whose_header_announces_more_than_the_file_is_refused(tmp_path):
    from cnnzoo.data import DataSpec, load_dataset
    from cnnzoo.errors import DataError

    folder = tmp_path / "arrays"
    folder.mkdir()
    (folder / "x_train.npy").write_bytes(_npy_header((10**6, 10**6)) + b"\0" * 64)
    np.save(folder / "y_train.npy", np.zeros(2, np.int64))
    with pytest.raises(DataError, match="more than the file holds"):
        load_dataset(DataSpec("npy", path=str(folder)), input_shape=(4,), data_dir=tmp_path, seed=0)


def _weights_file(path, shape) -> None:
    import h5py

    with h5py.File(path, "w") as store:  # declared, chunked and never written: a few KB on disk
        store.create_dataset("layers/dense/vars/0", shape=shape, dtype="float32", chunks=(1024, 1024))


def test_a_checkpoint_declaring_more_weights_than_memory_is_refused_before_keras_reads_it(tmp_path):
    import zipfile

    from cnnzoo.host_memory import MemoryRefused
    from cnnzoo.runs.folder import load_checkpoint

    weights = tmp_path / "model.weights.h5"
    _weights_file(weights, (1 << 20, 1 << 20))  # 4 TiB of float32
    assert weights.stat().st_size < 100_000
    archive = tmp_path / "best.keras"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("config.json", "{}")
        out.write(weights, "model.weights.h5")
    with pytest.raises(MemoryRefused, match="declares 4.4 TB of weights"):
        load_checkpoint(archive)


def test_init_from_a_weights_file_declaring_too_much_is_refused(tmp_path):
    from cnnzoo.host_memory import MemoryRefused
    from cnnzoo.runs.folder import check_weights_fit

    weights = tmp_path / "src.weights.h5"
    _weights_file(weights, (1 << 20, 1 << 20))
    with pytest.raises(MemoryRefused, match="of weights"):
        check_weights_fit(weights)
    small = tmp_path / "small.weights.h5"
    _weights_file(small, (1024, 1024))
    check_weights_fit(small)  # 4 MB: fine


def test_predict_inputs_fail_one_by_one_never_the_whole_command(tmp_path):
    from cnnzoo.data.inputs import Example, Failure, read_inputs

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, 8), np.float32))
    renamed = tmp_path / "renamed.npy"
    np.savez(tmp_path / "arrays.npz", x=np.zeros(8))
    (tmp_path / "arrays.npz").rename(renamed)  # an .npz named .npy: np.load returned an NpzFile
    huge = tmp_path / "huge.npy"
    huge.write_bytes(_npy_header((10**6, 10**6)) + b"\0" * 64)
    items = read_inputs([str(good), str(renamed), str(huge)], "ucr", (8, 1), progress=False)
    assert sum(isinstance(i, Example) for i in items) == 3
    failures = {Path(i.name).name: i.reason for i in items if isinstance(i, Failure)}
    assert set(failures) == {"renamed.npy", "huge.npy"}
    assert "cannot be read as a .npy array" in failures["renamed.npy"]
    assert "more than the file holds" in failures["huge.npy"]


def test_a_glob_through_a_looping_link_ends(tmp_path, monkeypatch):
    import os
    import time

    from cnnzoo.data import inputs

    folder = tmp_path / "loop"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    os.symlink(folder, folder / "again")
    os.symlink(folder, folder / "more")
    monkeypatch.setattr(inputs, "MAX_INPUTS", 500)
    started = time.perf_counter()
    found = inputs.expand([f"{folder}/**"], (".png",))
    assert time.perf_counter() - started < 30
    assert any(isinstance(f, inputs.Failure) and "more than 500 paths" in f.reason for f in found)


@pytest.mark.parametrize("workers", [[2222, "h:2"], ["localhost", "h:2"], ["localhost:99999", "h:2"], "h:1,h:2"])
def test_a_malformed_tf_config_is_one_error_line(tmp_path, monkeypatch, workers):
    from tiny_runs import invoke, tiny_setup

    config, data_dir = tiny_setup(tmp_path)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker",
                                                                                          "index": 0}}))
    result = invoke("train", config, "--distribute", "multi_worker", "--data-dir", data_dir,
                    "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: TF_CONFIG cluster job `worker` holds"), result.output
    assert "Traceback" not in result.output
