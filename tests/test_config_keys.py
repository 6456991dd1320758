"""The keys of `input:`, `data:` and `train:` are declared once (config/keys.py): the validator and the
generated JSON Schema accept and refuse the same values at every declared bound, and list the same keys."""

from __future__ import annotations

import pytest

from cnnzoo.config import keys, load_config
from cnnzoo.config.schema import build_schema
from cnnzoo.errors import ConfigError

jsonschema = pytest.importorskip("jsonschema")

BASE = """\
input: {shape: [8]}
model:
  layers:
    - Dense: {units: 2, activation: softmax}
data: {dataset: mnist}
"""
SECTIONS = {"data": keys.DATA, "train": keys.TRAIN}


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft7Validator(build_schema())


def bounded():
    """(section, key, a value at a bound, a value past it) for every scalar key with bounds or choices."""
    for section, declared in SECTIONS.items():
        for key in declared:
            check = key.check
            if check is None:
                continue
            if check.kind in ("int", "number"):
                step = 1 if check.kind == "int" else 0.01
                yield section, key.name, check.high, check.high + step
                if not check.open_low:
                    yield section, key.name, check.low, check.low - step
            elif check.kind == "choice":
                yield section, key.name, check.choices[0], "not-a-choice"


def _load(tmp_path, section: str, name: str, value):
    path = tmp_path / "config.yaml"
    path.write_text(BASE)
    return load_config(path, [f"{section}.{name}={value}"])


def _schema_errors(validator, section: str, name: str, value) -> list:
    import yaml

    data = yaml.safe_load(BASE)
    data.setdefault(section, {})[name] = value
    return list(validator.iter_errors(data))


@pytest.mark.parametrize("section, name, inside, outside", list(bounded()))
def test_validator_and_schema_agree_at_every_declared_bound(tmp_path, validator, section, name, inside, outside):
    spec = _load(tmp_path, section, name, inside)
    assert getattr(getattr(spec, section), name) == inside
    assert _schema_errors(validator, section, name, inside) == []
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, section, name, outside)
    assert refused.value.path == f"{section}.{name}"
    assert _schema_errors(validator, section, name, outside), f"the schema accepts {section}.{name}={outside}"


@pytest.mark.parametrize("section, name", [(s, k.name) for s, declared in SECTIONS.items() for k in declared
                                           if not k.nullable])
def test_a_key_that_takes_no_null_is_refused_by_both(tmp_path, validator, section, name):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, section, name, "null")
    assert refused.value.path == f"{section}.{name}" and "received None" in str(refused.value)
    assert _schema_errors(validator, section, name, None)


def test_the_schema_lists_exactly_the_declared_keys():
    properties = build_schema()["properties"]
    for section, declared in {"input": keys.INPUT, **SECTIONS}.items():
        assert set(properties[section]["properties"]) == {key.name for key in declared}, section


def test_defaults_and_descriptions_reach_the_schema():
    train = build_schema()["properties"]["train"]["properties"]
    assert train["learning_rate"]["exclusiveMinimum"] == 0 and train["learning_rate"]["maximum"] == 100
    assert train["epochs"]["default"] == 10 and train["batch_size"]["default"] == 32
    assert all(prop["description"] for prop in train.values())


def test_an_unknown_key_is_refused_with_the_declared_names(tmp_path):
    with pytest.raises(ConfigError, match="unknown key `epoch`") as refused:
        _load(tmp_path, "train", "epoch", 3)
    assert "`epochs`" in refused.value.hint
