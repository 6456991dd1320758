"""UEA multivariate series from tiny `.ts` files written by the tests, read by the loader and by `cnnzoo train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import isolated  # noqa: F401
from tiny_runs import invoke, train_tiny

from cnnzoo.data import DataSpec, class_names, load_dataset
from cnnzoo.data import uea
from cnnzoo.data.sizes import sample_count
from cnnzoo.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")
LENGTH, CLASSES = 20, ("walk", "run")
HEADER = ("# a comment\n@problemName Tiny\n@timeStamps false\n@missing false\n@univariate false\n"
          "@equalLength {equal}\n@seriesLength {length}\n@classLabel true walk run\n@data\n")


def cases(labels: list[int], length: int = LENGTH, seed: int = 0) -> list[str]:
    """One line a case: channel 0 a noisy ramp, channel 1 its class (0 or 1) plus noise, then the label."""
    rng = np.random.default_rng(seed)
    lines = []
    for label in labels:
        ramp = np.linspace(0, 1, length) + rng.normal(0, 0.1, length)
        level = label + rng.normal(0, 0.1, length)
        lines.append(":".join(",".join(f"{v:.4f}" for v in c) for c in (ramp, level)) + f":{CLASSES[label]}")
    return lines


def write_ts(folder: Path, train: list[str], test: list[str], equal: bool = True, length: int = LENGTH) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, lines in (("TRAIN", train), ("TEST", test)):
        text = HEADER.format(equal=str(equal).lower(), length=length) + "".join(f"{line}\n" for line in lines)
        (folder / f"Tiny_{part}.ts").write_text(text)
    return folder


@pytest.fixture
def data_dir(tmp_path):
    write_ts(tmp_path / "data" / "uea" / "Tiny", cases([0, 1] * 15), cases([1, 0, 0, 1], seed=1))
    return tmp_path / "data"


def load(data_dir, shape=(LENGTH, 2), name="Tiny", **spec):
    return load_dataset(DataSpec("uea", name=name, **spec), input_shape=shape, data_dir=data_dir, seed=0)


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_shapes_labels_and_class_names_in_declared_order(data_dir):
    splits = load(data_dir)
    assert splits.class_names == ["walk", "run"]
    assert splits.x_train.shape == (24, LENGTH, 2) and splits.x_train.dtype == np.float32
    assert splits.x_val.shape == (6, LENGTH, 2) and np.bincount(splits.y_val).tolist() == [3, 3]
    assert splits.y_test.tolist() == [1, 0, 0, 1] and splits.y_test.dtype == np.int64
    first = cases([1], seed=1)[0].split(":")
    assert splits.x_test[0, :, 1].tolist() == pytest.approx([float(v) for v in first[1].split(",")], abs=1e-6)
    assert splits.x_test[0, :, 0].tolist() == pytest.approx([float(v) for v in first[0].split(",")], abs=1e-6)


def test_cheap_shape_class_names_and_size(data_dir):
    spec = DataSpec("uea", name="Tiny")
    assert uea.input_shape(spec, data_dir) == (LENGTH, 2)
    assert class_names(spec, data_dir) == ["walk", "run"]
    samples, extra = sample_count(spec, (LENGTH, 2), data_dir)
    assert samples == 34 and extra == 34 * LENGTH * 2 * 4


@pytest.mark.parametrize("layout", ["Multivariate_ts/Tiny", "Multivariate2018_ts/Multivariate_ts/Tiny"])
def test_the_unpacked_archive_folder_in_the_data_dir_or_as_data_path(tmp_path, layout):
    write_ts(tmp_path / "data" / layout, cases([0, 1] * 3), cases([0, 1]))
    assert len(load(tmp_path / "data").y_test) == 2
    archive = tmp_path / "data" / layout.rsplit("/", 1)[0]
    assert len(load(None, path=str(archive)).y_test) == 2
    assert len(load(None, path=str(archive / "Tiny")).y_test) == 2


def test_wrong_input_shape_names_length_and_channels(data_dir):
    with pytest.raises(DataError, match=r"length 20 and 2 channel\(s\).*input.shape=\[20,2\]"):
        load(data_dir, shape=(20, 1))


def test_missing_dataset_says_where_to_put_it(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError) as err:
        load(tmp_path / "data", name="BasicMotions")
    text = str(err.value)
    assert "BasicMotions_TRAIN.ts" in text and str(tmp_path / "data" / "uea" / "BasicMotions") in text
    assert "timeseriesclassification.com" in text and "Multivariate_ts/" in text


def test_name_is_required(data_dir):
    with pytest.raises(DataError, match="data.name"):
        load(data_dir, name=None)


def _variable(data_dir: Path) -> Path:
    """TRAIN with @equalLength false: line 10 (case 1) 16 values long, line 11 (case 2) with a `?`."""
    train = cases([0, 1] * 15)
    train[0] = ":".join(",".join(c.split(",")[:16]) for c in train[0].split(":")[:2]) + ":walk"
    channels = train[1].split(":")
    values = channels[0].split(",")
    values[4:7] = ["1.0", "?", "3.0"]
    train[1] = ":".join([",".join(values), *channels[1:]])
    return write_ts(data_dir / "uea" / "Tiny", train, cases([1, 0, 0, 1], seed=1), equal=False)


def test_variable_length_and_missing_values_are_refused_by_default(data_dir):
    folder = _variable(data_dir)
    with pytest.raises(DataError) as err:
        load(data_dir)
    text = str(err.value)
    assert text.startswith(f"{folder / 'Tiny_TRAIN.ts'} is variable-length (line 10 ")
    assert "has missing values (`?` or NaN, first on line 11)" in text and "data.missing: interpolate" in text


@pytest.mark.parametrize("missing, middle, tail", [("zero", 0.0, "zero"), ("interpolate", 2.0, "last")])
def test_variable_length_padded_to_the_longest_then_filled(data_dir, missing, middle, tail):
    _variable(data_dir)
    assert uea.input_shape(DataSpec("uea", name="Tiny"), data_dir) == (LENGTH, 2)
    splits = load(data_dir, missing=missing, validation_split=0.0)
    assert splits.x_train.shape == (30, LENGTH, 2) and not np.isnan(splits.x_train).any()
    short, gap = splits.x_train[0], splits.x_train[1]
    assert gap[5, 0] == pytest.approx(middle) and gap[4, 0] == 1.0 and gap[6, 0] == 3.0
    last_known = [float(channel.split(",")[15]) for channel in cases([0])[0].split(":")[:2]]
    assert short[:16, 0] == pytest.approx([float(v) for v in cases([0])[0].split(":")[0].split(",")[:16]])
    assert short[16:] == pytest.approx(np.zeros((4, 2)) if tail == "zero" else np.tile(last_known, (4, 1)))


@pytest.mark.parametrize("line, text, message", [
    (11, "1,2,3:4,5,6:7,8,9:walk", r"line 11: 3 dimension\(s\) where line 10 has 2"),
    (11, "1,2:3,4:jump", r"line 11: the class label 'jump' is not declared in @classLabel \(walk, run\)"),
    (12, "1,abc:3,4:run", r"line 12, dimension 1, value 2: 'abc' is not a finite number"),
    (12, "1,2:3,1e39:run", r"line 12, dimension 2, value 2: '1e39' is not a finite number"),
    (13, "1,2,3:run", r"line 13: 1 dimension\(s\) where line 10 has 2"),
    (13, "run", r"line 13: no `:` before the class label"),
    (13, "@classLabel true a", r"line 13: a header line after @data"),
    (2, "@problemName Tiny\n1,2:3,4:walk", r"line 3: a case before @data"),
    (6, "@equalLength perhaps", r"line 6: @equalLength takes true or false, received 'perhaps'"),
    (3, "@timeStamps true", r"line 3: @timeStamps true: series with time stamps are not supported"),
    (8, "@classLabel false", r"line 8: @classLabel false declares no class labels"),
    (8, "@classLabel true walk walk", r"line 8: @classLabel names 'walk' more than once"),
    (8, "@classLabel true run", r"line 11: the class label 'walk' is not declared in @classLabel \(run\)"),
    (7, "@dimensions 100000", r"line 7: @dimensions takes one whole number from 1 to 10,000"),
    (7, "@colour blue", r"line 7: @colour is not a .ts header cnnzoo knows"),
])
def test_malformed_test_file_names_file_and_line(data_dir, line, text, message):
    path = data_dir / "uea" / "Tiny" / "Tiny_TEST.ts"
    replace_line(path, line, text)
    with pytest.raises(DataError, match=message) as err:
        load(data_dir)
    assert str(err.value).startswith(str(path))


def test_a_file_without_data_says_so(data_dir):
    path = data_dir / "uea" / "Tiny" / "Tiny_TEST.ts"
    path.write_text(HEADER.format(equal="true", length=LENGTH).replace("@data\n", ""))
    with pytest.raises(DataError, match=r"Tiny_TEST.ts: no @data line"):
        load(data_dir)
    path.write_text(HEADER.format(equal="true", length=LENGTH) + "# only a comment\n")
    with pytest.raises(DataError, match=r"Tiny_TEST.ts: no cases after @data \(line 9\)"):
        load(data_dir)


def test_equal_length_declared_but_not_kept(data_dir):
    path = data_dir / "uea" / "Tiny" / "Tiny_TRAIN.ts"
    replace_line(path, 11, "1,2,3:4,5,6:walk")
    with pytest.raises(DataError, match=r"Tiny_TRAIN.ts, line 11: a series of length 3 where @seriesLength has 20, "
                                        r"but the header says @equalLength true"):
        load(data_dir)


def test_hostile_files_are_refused_before_they_cost_memory(data_dir, monkeypatch):
    path = data_dir / "uea" / "Tiny" / "Tiny_TEST.ts"
    replace_line(path, 10, "1:" * 10_001 + "walk")
    with pytest.raises(DataError, match=r"Tiny_TEST.ts, line 10: more than 10,000 dimensions"):
        load(data_dir)
    replace_line(path, 10, cases([1])[0])
    with monkeypatch.context() as patch:
        patch.setattr(uea, "MAX_CELLS", 1000)  # 30 cases padded to 20 x 2 are 1,200 values
        with pytest.raises(DataError, match=r"Tiny_TRAIN.ts: 30 cases of 2 channel\(s\) padded .* more than 1,000"):
            load(data_dir)
    monkeypatch.setattr(uea, "MAX_LINE", 1000)
    replace_line(path, 10, ",".join(["1"] * 600) + ":1:walk")
    with pytest.raises(DataError, match=r"Tiny_TEST.ts, line 10: longer than 1,000 characters"):
        load(data_dir)


def test_undecodable_bytes_are_a_data_error(data_dir):
    path = data_dir / "uea" / "Tiny" / "Tiny_TEST.ts"
    lines = path.read_bytes().split(b"\n")
    lines[9] = b"1,\xff\xfe:3,4:run"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=r"Tiny_TEST.ts, line 10, dimension 1, value 2: .* is not a finite number"):
        load(data_dir)


CONFIG = """\
name: tiny_uea
input: {shape: [20, 2]}
model:
  layers:
    - Conv1D: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    - GlobalAveragePooling1D
    - Dense: {units: 2, activation: softmax}
data: {dataset: uea, name: Tiny, validation_split: 0.2}
train: {epochs: 2, batch_size: 8, learning_rate: 0.01}
"""


def test_train_on_a_multivariate_ts_dataset_through_the_cli(data_dir, tmp_path):
    config = tmp_path / "tiny_uea.yaml"
    config.write_text(CONFIG)
    run = train_tiny(config, tmp_path / "runs", data_dir)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["class_names"] == ["walk", "run"] and metrics["test_samples"] == 4
    assert len((run / "history.csv").read_text().splitlines()) == 3  # a header and two epochs


def test_a_malformed_file_is_exit_code_2_with_no_traceback(data_dir, tmp_path):
    config = tmp_path / "tiny_uea.yaml"
    config.write_text(CONFIG)
    path = data_dir / "uea" / "Tiny" / "Tiny_TRAIN.ts"
    replace_line(path, 12, "1,2:3,4:jump")
    result = invoke("train", config, "--runs-dir", tmp_path / "runs", "--data-dir", data_dir)
    assert result.exit_code == 2, result.output
    assert "Tiny_TRAIN.ts, line 12: the class label 'jump'" in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
