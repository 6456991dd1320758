"""`${...}` arithmetic on block parameters: what it computes, what it refuses (before evaluating
anything), and that values reading `$in_channels` wait for the builder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cnnzoo.config import load_config
from cnnzoo.config.expr import Deferred, ExprError, make_divisible, parse, render
from cnnzoo.errors import ConfigError


def block_config(folder: Path, value: str) -> Path:
    path = folder / "model.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: expr
        input: {{shape: [8, 8, 2]}}
        model:
          blocks:
            unit:
              params: [a: 6, b: 4, k: [3, 3], act: relu, out: {value}]
              layers:
                - Conv2D: {{filters: 1, kernel_size: 1}}
          layers: [unit]
        """))
    return path


def computed(folder: Path, value: str) -> object:
    """A default computed from the parameters before it, as the block use binds it."""
    return load_config(block_config(folder, value)).layers[0].params["out"]


@pytest.mark.parametrize("text, value", [
    ("'${a * b}'", 24), ("'${(a + b) // 3}'", 3), ("'${a / b}'", 1.5), ("'${a % b - -1}'", 3),
    ("'${max(1, a // 8)}'", 1), ("'${min(a, b, 5)}'", 4), ("'${round(a * 0.75)}'", 4),
    ("'${int(a * 0.25)}'", 1), ("'${ceil(a / 4)}'", 2), ("'${make_divisible(a * 2.8, 8)}'", 16),
    ("'${a == 6 and b != 4}'", False), ("'${not a > b}'", False), ("'${1 < a <= 6}'", True),
    ("'${a if b > 3 else 0}'", 6), ("$k", [3, 3]), ("'conv${a}x${b}_$act'", "conv6x4_relu"),
    ("'${ a }'", 6), ("'${act}'", "relu"),
])
def test_expressions_compute_with_python_semantics_and_keep_types(tmp_path, text, value):
    result = computed(tmp_path, text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("value", [3, 8, 11.2, 16 * 1.4, 37, 96 * 0.35, 1280 * 1.3, 0.5])
def test_make_divisible_is_keras_mobilenet_rule(value):
    from keras.src.applications.mobilenet_v2 import _make_divisible

    assert make_divisible(value, 8) == _make_divisible(value, 8)


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os').system('true')", "calls __import__('os').system(...)"),
    ("open('x')", "calls open(...)"),
    ("eval('1')", "calls eval(...)"),
    ("max(*[1, 2])", "with plain arguments"),
    ("round(a, ndigits=1)", "with plain arguments"),
    ("a.real", "attribute access"),
    ("'a' * 3", "contains 'a'"),
    ("a ** 99", "`**`"),
    ("[a][0]", "indexing"),
    ("(lambda: 1)()", "calls"),
    ("(x := 3)", "`:=`"),
    ("a +", "not a valid expression"),
    ("((1)", "not a valid expression"),
    ("1" + " + 1" * 300, "longer than 500 characters"),
])
def test_everything_but_arithmetic_is_refused_before_evaluation(text, fragment):
    with pytest.raises(ExprError, match=None) as info:
        parse(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("a // 0", "divides by zero"), ("a / (b - 4)", "divides by zero"),
    ("a * 1000000000 * 1000000000", "too large"), ("k + 1", "`k` is [3, 3], not a number"),
    ("make_divisible(a, 0)", "divisor of make_divisible must be positive"),
])
def test_evaluation_errors_say_what_went_wrong(text, fragment):
    with pytest.raises(ExprError) as info:
        render("${" + text + "}", {"a": 6, "b": 4, "k": [3, 3]})
    assert fragment in str(info.value)


def test_errors_are_located_at_the_value_and_the_block_use(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(block_config(tmp_path, "'${a // (b - 4)}'"))
    error = info.value
    assert (error.line, error.path) == (6, "model.blocks.unit.params (in block `unit` used at model.layers[0] line 9)")
    assert "divides by zero" in error.message


def test_defaults_may_compute_from_earlier_parameters(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""\
        name: defaults
        input: {shape: [8, 8, 2]}
        model:
          blocks:
            bottleneck:
              params: [filters, out: "${4 * filters}", expand: "${in_channels * 6}"]
              layers:
                - Conv2D: {filters: $out, kernel_size: 1}
                - Conv2D: {filters: $expand, kernel_size: 1}
          layers:
            - bottleneck: {filters: 4}
            - bottleneck: {filters: 4, out: 5}
        """))
    first, second = load_config(path).layers
    assert first.params["out"] == 16 and second.params["out"] == 5
    assert isinstance(first.params["expand"], Deferred)
    assert isinstance(first.children[1].args["filters"], Deferred)  # the builder knows in_channels
    from cnnzoo.model.builder import build_model

    model = build_model(load_config(path)).model
    assert [layer.filters for layer in model.layers[1:]] == [16, 2 * 6, 5, 12 * 6]


def test_in_channels_stays_deferred_until_the_builder_resolves_it(tmp_path):
    from cnnzoo.model.builder import build_model

    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""\
        name: deferred
        input: {shape: [8, 8, 3]}
        model:
          blocks:
            inner:
              params: [width]
              layers:
                - Conv2D: {filters: "${width + in_channels}", kernel_size: 1, name: c}
            outer:
              layers:
                - Conv2D: {filters: 5, kernel_size: 1, name: first}
                - inner: {width: "${in_channels * 10}"}
          layers: [outer]
        """))
    config = load_config(path)
    conv = config.layers[0].children[1].children[0]
    assert isinstance(conv.args["filters"], Deferred)
    model = build_model(config).model
    # `width` reads outer's input (3 channels), `in_channels` in inner reads inner's input (5)
    assert model.get_layer("outer.inner.c").filters == 3 * 10 + 5


def test_repeat_index_numbers_the_copies_of_a_repeated_entry(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""\
        name: indexed
        input: {shape: [4]}
        model:
          blocks:
            unit:
              params: [units, rate]
              layers:
                - Dense: {units: $units, name: "d${repeat_index}"}
                - Dropout: {rate: $rate}
          layers:
            - Dense: {units: "${2 + repeat_index}"}
              repeat: 3
            - unit: {units: 5, rate: "${0.1 * (repeat_index + 1)}"}
              repeat: 2
        """))
    config = load_config(path)
    assert [node.args["units"] for node in config.layers[:3]] == [2, 3, 4]
    assert [node.params["rate"] for node in config.layers[3:]] == [0.1, 0.2]
    assert [node.children[0].name for node in config.layers[3:]] == ["unit.d0", "unit_1.d0"]  # the block's own
