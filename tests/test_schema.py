"""The JSON Schema of the config format: shipped configs and the docs' examples pass a standard validator,
broken configs fail it, and the shipped schema file is what `cnnzoo schema` generates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cnnzoo.config.schema import SCHEMA_LINE, schema_text
from cnnzoo.config.source import load_document
from tiny_runs import invoke

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))
REJECTED = ["unknown_top_level_key", "unknown_layer", "misspelt_argument", "filters_string", "batch_size_string",
            "missing_input", "missing_model", "unknown_dataset", "repeat_zero", "unknown_merge", "use_bias_int",
            "early_stopping_unknown_key", "input_shape_negative", "lambda_layer", "missing_required_arg",
            "unknown_train_key", "concatenate_in_list", "one_branch", "dropout_rate_string",
            "tensorboard_histogram_negative", "mlflow_unknown_key", "task_unknown", "folds_one", "class_weight_list",
            "missing_unknown", "features_bool"]


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((REPO / "configs" / "cnnzoo.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator, data) -> list[str]:
    return [f"{e.json_path}: {e.message[:120]}" for e in validator.iter_errors(data)]


def test_the_shipped_schema_file_is_up_to_date():
    assert (REPO / "configs" / "cnnzoo.schema.json").read_text() == schema_text(), \
        "regenerate it: cnnzoo schema --out configs/cnnzoo.schema.json"


def test_schema_command_prints_and_writes_the_schema(tmp_path):
    printed = invoke("schema")
    assert printed.exit_code == 0 and json.loads(printed.stdout)["title"] == "cnnzoo config"
    out = tmp_path / "cnnzoo.schema.json"
    written = invoke("schema", "--out", out)
    assert written.exit_code == 0 and out.read_text() == printed.stdout


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_name_the_schema_and_pass_it(validator, path):
    assert path.read_text().splitlines()[0] == SCHEMA_LINE
    assert errors(validator, yaml.safe_load(path.read_text())) == []
    assert errors(validator, load_document(path).data) == []  # with its base merged


def docs_examples() -> list[dict]:
    """The config examples (```yaml blocks with `model` or `base`) of README.md and every docs/*.md."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    blocks = [block for page in pages for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)]
    configs = [yaml.safe_load(block) for block in blocks]
    return [c for c in configs if isinstance(c, dict) and ("model" in c or "base" in c)]


def test_docs_examples_pass_the_schema(validator):
    examples = docs_examples()
    assert len(examples) >= 10
    for example in examples:
        assert errors(validator, example) == [], example.get("name")


@pytest.mark.parametrize("name", REJECTED)
def test_broken_configs_fail_the_schema(validator, broken_configs_dir, name):
    data = yaml.safe_load((broken_configs_dir / f"{name}.yaml").read_text())
    assert errors(validator, data), f"{name} passes the schema"


def test_the_schema_knows_every_layer_argument_and_block_use(validator):
    config = {"name": "ok", "input": {"shape": [8, 8, 3]}, "model": {
        "blocks": {"conv_bn": {"params": ["filters"], "layers": [
            {"Conv2D": {"filters": "$filters", "kernel_size": 3, "use_bias": False}}, "BatchNormalization"]}},
        "layers": [{"conv_bn": {"filters": 4}, "repeat": 2, "name": "stem"},
                   {"branches": [[{"Conv2D": {"filters": 2, "kernel_size": 1}}], []], "merge": "concatenate"},
                   {"Bidirectional": {"layer": {"LSTM": {"units": 4}}}}, "GlobalAveragePooling2D"]},
        "train": {"tensorboard": {"histogram_freq": 2}, "schedule": {"name": "cosine", "warmup_epochs": 1}}}
    assert errors(validator, config) == []
    config["model"]["layers"][0]["Conv2D"] = {"filters": 4, "kernel_sise": 3}
    assert any("kernel_sise" in e for e in errors(validator, config))
