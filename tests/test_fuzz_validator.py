"""Property-based: no config, however broken, gets anything but success or a located ConfigError.

About 2,900 examples per run: 600 random YAML documents through the real `cnnzoo summary`
command (exit code 0 or 2, the file named, no traceback), 250 mutated shipped configs built in
process, 2,000 random texts, and deep nesting. CNNZOO_FUZZ_SCALE=N multiplies the example counts
for a deeper search outside the timed suite.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from typer.testing import CliRunner

from cnnzoo.cli import app
from cnnzoo.config import load_config
from cnnzoo.errors import CnnzooError
from cnnzoo.model.builder import build_model
from data_fixtures import FROM_DATA

REPO = Path(__file__).resolve().parent.parent
SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((REPO / "configs").glob("*.yaml"))
           if "base" not in p.read_text()}
for _name in set(FROM_DATA) & set(SHIPPED):  # `units: auto` would read the dataset on every example
    SHIPPED[_name]["model"]["layers"][-1]["Dense"]["units"] = 2
# ImageNet-sized nets take seconds to build: fuzzed with fewer examples of their own below
MODERN = {name: SHIPPED.pop(name) for name in ("resnet50", "mobilenet_v2", "efficientnet_b0")}
SMALL = {"lenet": [28, 28, 1], "lenet5": [32, 32, 1], "lenet_bn": [28, 28, 1], "cnn1d": [64, 1],
         "cnn1d_fcn": [64, 1], "alexnet": [32, 32, 3], "vgg16": [32, 32, 3], "inception_v2": [32, 32, 3],
         "resnet50": [32, 32, 3], "mobilenet_v2": [32, 32, 3], "efficientnet_b0": [32, 32, 3], "iris_mlp": [4],
         "linear_regression": [1], "lenet5_1998": [32, 32, 1], "lenet_deep": [28, 28, 1],
         "resnet18_flowers": [32, 32, 3], "cnn1d_fcn_wang": [64, 1], "cnn1d_resnet_wang": [64, 1]}
SCALE = float(os.environ.get("CNNZOO_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(250 * SCALE), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["$filters", "${x}", "relu", "same", "Conv2D", "Dense", "${in_channels // 0}",
                                    "${filters * 2}", "${min(x, 1)}", "${strides == 1}", "auto"]))
keys = st.one_of(st.text(max_size=10), st.sampled_from(
    ["name", "input", "model", "layers", "blocks", "data", "train", "shape", "params", "branches", "merge",
     "repeat", "when", "residual", "Conv2D", "Dense", "Flatten", "filters", "units", "kernel_size", "epochs", "optimizer"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(keys, inner, max_size=5)),
                         max_leaves=40)


def _check(data, overrides=(), build=True) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data)
        try:
            config = load_config(path, list(overrides))
            if build:
                build_model(config)
        except CnnzooError as exc:
            assert "fuzz.yaml" in str(exc) or "--set" in str(exc), str(exc)


def _check_cli(data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        result = CliRunner().invoke(app, ["summary", str(path), "--json"])
    assert result.exit_code in (0, 2), result.output
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error: ") and "fuzz.yaml" in result.output, result.output


@settings(FUZZ, max_examples=int(600 * SCALE))
@given(documents)
def test_random_documents_never_crash_the_cli(data):
    _check_cli(data)


def _mutate(draw, node):
    """Replace one randomly chosen value (or delete one key) somewhere in the tree."""
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node, key=str)))
        action = draw(st.sampled_from(["recurse", "replace", "delete"]))
        if action == "delete":
            del node[key]
        elif action == "replace" or not isinstance(node[key], (dict, list)):
            node[key] = draw(scalars | st.lists(scalars, max_size=3) | st.integers(-5, 5))
        else:
            _mutate(draw, node[key])
    elif isinstance(node, list) and node:
        index = draw(st.integers(0, len(node) - 1))
        action = draw(st.sampled_from(["recurse", "replace", "duplicate"]))
        if action == "duplicate":
            node.insert(index, copy.deepcopy(node[index]))
        elif action == "replace" or not isinstance(node[index], (dict, list)):
            node[index] = draw(scalars)
        else:
            _mutate(draw, node[index])


@st.composite
def mutated_configs(draw, shipped=SHIPPED):
    name = draw(st.sampled_from(sorted(shipped)))
    data = copy.deepcopy(shipped[name])
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, data)
    return name, data


def _check_mutated(case) -> None:
    name, data = case
    if isinstance(data.get("input"), dict) and "shape" in data["input"]:
        data["input"]["shape"] = SMALL[name]  # keep builds small; the shape itself is fuzzed above
    _check(data)


@FUZZ
@given(mutated_configs())
def test_mutated_shipped_configs_never_crash(case):
    _check_mutated(case)


@settings(FUZZ, max_examples=int(40 * SCALE))
@given(mutated_configs(MODERN))
def test_mutated_modern_configs_never_crash(case):
    """Expressions, `$in_channels`, `when` and `residual` under mutation: still exit 0 or 2."""
    _check_mutated(case)


@settings(max_examples=int(2000 * SCALE), deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    _check(text, build=False)


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a: " + "{b: " * 3000 + "1" + "}" * 3000])
def test_deep_nesting_is_refused_cleanly(text):
    _check(text, build=False)
