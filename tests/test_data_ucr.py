"""UCR series from a tiny TSV pair written by the tests."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import isolated, ucr_rows, write_ucr  # noqa: F401

from cnnzoo.data import DataSpec, class_names, load_dataset, ucr
from cnnzoo.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")
LENGTH = 12


@pytest.fixture
def data_dir(tmp_path):
    write_ucr(tmp_path / "data" / "ucr" / "Tiny", "Tiny", ucr_rows([1, -1, 2] * 10, LENGTH),
              ucr_rows([2, -1, 1, 1], LENGTH, seed=1))
    return tmp_path / "data"


def load(data_dir, shape=(LENGTH, 1), seed=0, name="Tiny", **spec):
    return load_dataset(DataSpec("ucr", name=name, **spec), input_shape=shape, data_dir=data_dir, seed=seed)


def test_shapes_labels_and_class_names(data_dir):
    splits = load(data_dir)
    assert splits.class_names == ["-1", "1", "2"]
    assert splits.x_train.shape == (24, LENGTH, 1) and splits.x_train.dtype == np.float32
    assert splits.x_val.shape == (6, LENGTH, 1) and np.bincount(splits.y_val).tolist() == [2, 2, 2]
    assert splits.y_test.tolist() == [2, 0, 1, 1] and splits.y_test.dtype == np.int64
    assert splits.x_test[0, 0, 0] == pytest.approx(float(ucr_rows([2, -1, 1, 1], LENGTH, seed=1)[0][1]))


def test_validation_split_is_seeded(data_dir):
    assert np.array_equal(load(data_dir, seed=1).x_val, load(data_dir, seed=1).x_val)
    assert not np.array_equal(load(data_dir, seed=1).x_val, load(data_dir, seed=2).x_val)


def test_explicit_path_to_the_folder(data_dir):
    assert len(load(None, path=str(data_dir / "ucr" / "Tiny")).y_test) == 4


def test_wrong_input_length_says_how_to_fix(data_dir):
    with pytest.raises(DataError, match=r"length 12.*input.shape=\[12,1\]"):
        load(data_dir, shape=(500, 1))


def test_ragged_row_names_file_and_line(data_dir):
    path = data_dir / "ucr" / "Tiny" / "Tiny_TRAIN.tsv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit("\t", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"Tiny_TRAIN.tsv, line 5: 12 tab-separated fields where the first line has 13"):
        load(data_dir)


def test_non_numeric_value_names_file_line_and_column(data_dir):
    path = data_dir / "ucr" / "Tiny" / "Tiny_TEST.tsv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("\t", "\tabc\t", 1).rsplit("\t", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"Tiny_TEST.tsv, line 3, column 2: 'abc' is not a number"):
        load(data_dir)


def test_missing_dataset_says_where_to_put_it(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError) as err:
        load(tmp_path / "data", name="FordA")
    text = str(err.value)
    assert "FordA_TRAIN.tsv" in text and str(tmp_path / "data" / "ucr" / "FordA") in text
    assert "password-protected" in text and "ucr/FordA/" in text


def test_name_is_required(data_dir):
    with pytest.raises(DataError, match="data.name"):
        load(data_dir, name=None)


def _with_gaps(data_dir):
    """Row 1 of TRAIN padded with NaN (a variable-length series), row 2 with a NaN in the middle."""
    path = data_dir / "ucr" / "Tiny" / "Tiny_TRAIN.tsv"
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    rows[0][-3:] = ["NaN"] * 3
    rows[1][5] = "NaN"
    rows[1][4], rows[1][6] = "1.0", "3.0"
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return rows


def test_missing_values_are_refused_by_default_with_the_option_in_the_hint(data_dir):
    _with_gaps(data_dir)
    with pytest.raises(DataError, match=r"Tiny_TRAIN.tsv, line 1, column 11: 'NaN' is not a number.*data.missing: "
                                        r"interpolate"):
        load(data_dir)


@pytest.mark.parametrize("missing, middle", [("zero", 0.0), ("interpolate", 2.0)])
def test_missing_values_filled_keep_the_padded_length(data_dir, missing, middle):
    rows = _with_gaps(data_dir)
    splits = load(data_dir, missing=missing, validation_split=0.0)
    assert splits.x_train.shape == (30, LENGTH, 1) and not np.isnan(splits.x_train).any()
    x = {tuple(round(float(v), 3) for v in s[:4, 0]): s[:, 0] for s in splits.x_train}
    padded, gap = (x[tuple(round(float(v), 3) for v in row[1:5])] for row in rows[:2])
    assert gap[4] == pytest.approx(middle)
    last_known = float(rows[0][-4])
    assert padded[-3:].tolist() == pytest.approx([0.0] * 3 if missing == "zero" else [last_known] * 3)


@pytest.mark.parametrize("where", ["archive in the data dir", "data dir is the archive", "data.path is the archive"])
def test_the_whole_unpacked_archive_folder(tmp_path, where):
    archive = tmp_path / "data" / "UCRArchive_2018"
    write_ucr(archive / "Tiny", "Tiny", ucr_rows([1, 2] * 5, LENGTH), ucr_rows([2, 1], LENGTH))
    write_ucr(archive / "Other", "Other", ucr_rows([3, 4] * 5, 5), ucr_rows([3, 4], 5))
    data_dir, path = {"archive in the data dir": (tmp_path / "data", None), "data dir is the archive": (archive, None),
                      "data.path is the archive": (None, str(archive))}[where]
    splits = load(data_dir, path=path)
    assert splits.class_names == ["1", "2"] and splits.y_test.tolist() == [1, 0]
    assert ucr.input_shape(DataSpec("ucr", name="Other", path=path), data_dir) == (5, 1)


def _text_labelled(tmp_path):
    rows = ucr_rows([0, 1, 1] * 4, LENGTH)
    named = [["normal" if row[0] == 0 else "abnormal", *row[1:]] for row in rows]
    return write_ucr(tmp_path / "data" / "ucr" / "Text", "Text", named, named[:4])


def test_text_labels_are_the_sorted_class_names(tmp_path):
    _text_labelled(tmp_path)
    splits = load(tmp_path / "data", name="Text", validation_split=0.0)
    assert splits.class_names == ["abnormal", "normal"]
    assert splits.y_train.tolist() == [1, 0, 0] * 4 and splits.y_test.tolist() == [1, 0, 0, 1]
    assert splits.x_train[:, :, 0] == pytest.approx(np.array([r[1:] for r in ucr_rows([0, 1, 1] * 4, LENGTH)], float))
    spec = DataSpec("ucr", name="Text")
    assert class_names(spec, tmp_path / "data") == ["abnormal", "normal"]
    assert ucr.input_shape(spec, tmp_path / "data") == (LENGTH, 1)


def test_text_labels_with_missing_values(tmp_path):
    path = _text_labelled(tmp_path) / "Text_TRAIN.tsv"
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    rows[0][3] = "NaN"
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"Text_TRAIN.tsv, line 1, column 4: 'NaN' is not a number.*data.missing"):
        load(tmp_path / "data", name="Text")
    splits = load(tmp_path / "data", name="Text", missing="zero", validation_split=0.0)
    assert splits.x_train[0, 2, 0] == 0.0 and splits.class_names == ["abnormal", "normal"]


@pytest.mark.parametrize("label, message", [("", "column 1: '' is not a class label"),
                                            ("NaN", "column 1: 'NaN' is not a class label")])
def test_a_missing_label_names_file_and_line(tmp_path, label, message):
    path = _text_labelled(tmp_path) / "Text_TEST.tsv"
    lines = path.read_text().splitlines()
    lines[2] = label + lines[2][lines[2].index("\t"):]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"Text_TEST.tsv, line 3, {message}"):
        load(tmp_path / "data", name="Text")


def test_numeric_labels_keep_their_numeric_order_and_input_shape(data_dir):
    spec = DataSpec("ucr", name="Tiny")
    assert class_names(spec, data_dir) == ["-1", "1", "2"]
    assert ucr.input_shape(spec, data_dir) == (LENGTH, 1)
