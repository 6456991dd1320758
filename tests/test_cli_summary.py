"""`cnnzoo summary` as a user meets it: help without TensorFlow, the table, --json, --set, and a clean
one-paragraph error (exit code 2, file:line and YAML path, no traceback) for every broken config."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cnnzoo.cli import app

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "broken_configs"
INDEX = yaml.safe_load((BROKEN / "expected.yaml").read_text())
MARKER = Path("/tmp/cnnzoo-broken-config-executed")  # what the code-running configs would create
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def cnnzoo(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def command_line() -> list[str]:
    script = Path(sys.executable).parent / "cnnzoo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cnnzoo"]


# --- help: fast, and without importing TensorFlow -----------------------------------------------

def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom cnnzoo.cli import app\n"
            "codes = [CliRunner().invoke(app, args).exit_code for args in (['--help'], ['summary', '--help'])]\n"
            "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["[0,", "0]", "False", "False"], done.stderr


def test_help_is_fast_and_lists_summary():
    """Measured in CPU seconds of the child, not wall time, which a loaded 2-core machine stretches."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command_line(), "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **ENV})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 0 and "summary" in done.stdout
    assert cpu < 1.0, f"`cnnzoo --help` used {cpu:.2f} CPU seconds (importing TensorFlow takes several)"


def test_summary_help():
    result = cnnzoo("summary", "--help")
    assert result.exit_code == 0
    for option in ("--set", "--json", "--expand"):
        assert option in result.output


# --- the happy path ------------------------------------------------------------------------------

def test_summary_table_for_lenet():
    result = cnnzoo("summary", str(REPO / "configs" / "lenet.yaml"))
    assert result.exit_code == 0, result.output
    assert "params: 1,256,080  (trainable 1,256,080, non-trainable 0)" in result.stdout
    assert "forward FLOPs per sample: 13,121,500 (13.12 MFLOPs)" in result.stdout
    assert "│ dense   " in result.stdout and "(500)" in result.stdout
    assert result.stderr == ""


def test_summary_json_for_lenet():
    result = cnnzoo("summary", str(REPO / "configs" / "lenet.yaml"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"name", "params", "trainable_params", "non_trainable_params", "flops", "layers"} <= set(data)
    assert (data["name"], data["params"], data["trainable_params"], data["flops"]) == (
        "lenet", 1_256_080, 1_256_080, 13_121_500)
    assert [row["type"] for row in data["layers"]] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                                      "Flatten", "Dense", "Dense"]
    assert data["layers"][4]["output_shape"] == [2450]
    assert sum(row["params"] for row in data["layers"]) == data["params"]


def test_summary_json_totals_match_keras_for_inception(build_shipped):
    config, built = build_shipped("inception_v2")
    model = built.model
    data = json.loads(cnnzoo("summary", str(REPO / "configs" / "inception_v2.yaml"), "--json").stdout)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert data["params"] == model.count_params() == 10_307_697
    assert (data["trainable_params"], data["non_trainable_params"]) == (trainable, 20_032)
    block = next(row for row in data["layers"] if row["name"] == "inception_5b")
    assert block["type"] == "block inception" and len(block["children"]) == 16
    assert block["params"] == sum(child["params"] for child in block["children"])


@pytest.mark.parametrize("overrides, params", [
    (["--set", "input.shape=[32,32,1]"], 1_631_080),                     # Flatten 8*8*50 instead of 7*7*50
    (["--set", "model.layers[5].Dense.units=100", "--set", "train.epochs=1"], 271_680),
    (["--set", "model.layers.5.Dense.units=100"], 271_680),
])
def test_summary_set(overrides, params):
    result = cnnzoo("summary", str(REPO / "configs" / "lenet.yaml"), "--json", *overrides)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == params


def test_summary_set_error():
    result = cnnzoo("summary", str(REPO / "configs" / "lenet.yaml"), "--set", "model.layers[0].Conv2D.filters=many")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --set model.layers[0].Conv2D.filters=many model.layers[0].Conv2D.filters: "
                                    "Conv2D argument `filters` must be an integer, received 'many' (string).")


def test_summary_expand_lists_block_children():
    result = cnnzoo("summary", str(REPO / "configs" / "vgg16.yaml"), "--expand", "--set", "input.shape=[32,32,3]")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    stage = next(i for i, line in enumerate(lines) if "│ vgg_stage_2 " in line)
    assert "block vgg_stage" in lines[stage]
    assert [line.split("│")[1].strip() for line in lines[stage + 1:stage + 5]] == [
        "conv2d", "conv2d_1", "conv2d_2", "max_pooling2d"]


# --- broken configs: one clean paragraph each ----------------------------------------------------

def test_corpus_index_covers_every_file():
    listed = {entry["file"] for entry in INDEX}
    present = {p.name for p in BROKEN.glob("*.yaml")} - {"expected.yaml"}
    assert present - listed == set(), "add these broken configs to expected.yaml"
    assert listed - present == {"does_not_exist.yaml"}
    assert len(listed) >= 30


@pytest.mark.parametrize("entry", INDEX, ids=[entry["file"] for entry in INDEX])
def test_broken_config_gives_clean_located_error(entry):
    path = BROKEN / entry["file"]
    MARKER.unlink(missing_ok=True)
    result = cnnzoo("summary", str(path))
    assert not MARKER.exists(), "a config ran code"
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    error = result.stderr.rstrip("\n")
    assert "\n" not in error, "an error is one paragraph"
    reported = (BROKEN / entry["reported"]).resolve() if entry.get("reported") else path
    location = f"error: {reported}"
    if entry["line"] is not None:
        location += f":{entry['line']}"
    if entry["path"] is not None:
        location += f" {entry['path']}"
    assert error.startswith(location + ("" if entry.get("partial") else ":")), error
    assert entry["message"] in error
    assert entry.get("hint", "") in error


def test_bombs_fail_fast():
    from cnnzoo.tensorflow_import import import_tensorflow

    import_tensorflow()  # time the config, not the one-off TensorFlow import
    for name in ("billion_laughs.yaml", "repeat_bomb.yaml", "branch_doubling_bomb.yaml", "block_recursion.yaml"):
        start = time.process_time()  # CPU seconds: a loaded machine does not stretch them
        assert cnnzoo("summary", str(BROKEN / name)).exit_code == 2
        assert time.process_time() - start < 2, name


def test_error_in_a_real_terminal_process():
    """No traceback and no TensorFlow start-up chatter reach the user: stderr is the one error line."""
    MARKER.unlink(missing_ok=True)
    done = subprocess.run([*command_line(), "summary", str(BROKEN / "python_object_apply.yaml")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **ENV})
    assert not MARKER.exists()
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {BROKEN / 'python_object_apply.yaml'}:8 model.layers[1].Dense.units: YAML tag "
        "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed. Config files are plain data; "
        "tags that construct objects are refused."]
