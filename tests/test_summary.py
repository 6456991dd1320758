"""Model summary: totals agree with Keras, block and branch rows group their layers, and the FLOP
counter agrees with TensorFlow's profiler."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from cnnzoo.config import load_config
from cnnzoo.model.builder import build_model
from cnnzoo.model.summary import render_summary, summarize

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
# BatchNorm moving mean/variance (lenet5_1998: its RBF prototypes); lenet_finetune: its frozen convolutions (520 + 25,050)
NON_TRAINABLE = {"inception_v2": 20_032, "lenet_bn": 192, "cnn1d_fcn": 384, "inception_v2_gap": 20_032,
                 "resnet50": 53_120, "mobilenet_v2": 34_112, "efficientnet_b0": 42_023, "lenet_finetune": 25_570,
                 "lenet5_1998": 840, "lenet_deep": 832, "resnet18_flowers": 4_800, "resnet18_flowers_128px": 4_800,
                 "alexnet_bn": 2_304, "vgg11_gap": 2_752,
                 "cnn1d_fcn_wang": 1_024, "cnn1d_resnet_wang": 2_560,
}  # lenet5_1998: the RBF output's fixed 7x12 digit bitmaps


def summary_of(tmp_path: Path, text: str, overrides: list[str] = ()):
    path = tmp_path / "model.yaml"
    path.write_text(textwrap.dedent(text))
    config = load_config(path, list(overrides))
    return summarize(config, build_model(config))


def rendered(summary, expand: bool = False) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_summary(summary, expand=expand))
    return console.file.getvalue()


@pytest.mark.parametrize("name", SHIPPED)
def test_totals_match_keras(name, build_shipped):
    config, built = build_shipped(name)
    model = built.model
    summary = summarize(config, built)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert summary.params == model.count_params()
    assert (summary.trainable_params, summary.non_trainable_params) == (trainable, model.count_params() - trainable)
    assert summary.non_trainable_params == NON_TRAINABLE.get(name, 0)
    assert summary.weight_bytes == 4 * summary.params
    assert len(summary.layers) == len(config.layers)                       # one row per config entry
    assert sum(row.params for row in summary.layers) == summary.params
    assert sum(row.flops for row in summary.layers) == summary.flops
    assert summary.layers[-1].output_shape == list(model.output_shape[1:])
    data = json.loads(json.dumps(summary.to_json()))
    assert data["params"] == summary.params and data["input_shape"] == list(config.input.shape)


def test_block_rows_group_their_layers(build_shipped):
    config, built = build_shipped("inception_v2")
    rows = {row.name: row for row in summarize(config, built).layers}
    row = rows["inception_3a"]
    assert row.type == "block inception"
    assert row.output_shape == [28, 28, 256]
    assert row.params == sum(child.params for child in row.children)
    assert row.flops == sum(child.flops for child in row.children)
    names = [child.name for child in row.children]
    assert all(name.startswith("inception_3a.") for name in names)
    assert names[-1] == "inception_3a.branches.concatenate"
    assert len(names) == 2 * (1 + 2 + 3 + 1) + 1 + 1    # conv+BN per conv_bn (1, 2, 3, 1), a pool, the merge
    assert rows["stem1"].type == "block conv_bn" and [c.type for c in rows["stem1"].children] == [
        "Conv2D", "BatchNormalization"]
    assert rows["max_pooling2d"].type == "MaxPooling2D" and rows["max_pooling2d"].children == []


def test_exact_flops_and_rows_for_a_small_chain(tmp_path):
    summary = summary_of(tmp_path, """\
        name: tiny
        input: {shape: [8, 8, 1]}
        model:
          layers:
            - Conv2D: {filters: 8, kernel_size: 3, activation: relu}
            - MaxPooling2D: {pool_size: 2}
            - Flatten
            - Dense: {units: 4, activation: softmax}
        """)
    rows = [(r.name, r.type, r.output_shape, r.params, r.flops) for r in summary.layers]
    assert rows == [
        ("conv2d", "Conv2D", [6, 6, 8], 80, 2 * 9 * 288 + 288 + 288),   # 2 per MAC, bias, ReLU per output
        ("max_pooling2d", "MaxPooling2D", [3, 3, 8], 0, 4 * 72),         # window size per output
        ("flatten", "Flatten", [72], 0, 0),
        ("dense", "Dense", [4], 292, 2 * 72 * 4 + 4 + 5 * 4),            # softmax 5 per element
    ]
    assert summary.flops == 5760 + 288 + 600
    assert (summary.name, summary.input_shape, summary.params) == ("tiny", [8, 8, 1], 372)


def test_exact_flops_and_grouping_for_blocks_in_branches(tmp_path):
    summary = summary_of(tmp_path, """\
        name: grouped
        input: {shape: [4, 4, 2]}
        model:
          blocks:
            cb:
              layers:
                - Conv2D: {filters: 3, kernel_size: 1, use_bias: false}
                - BatchNormalization
                - ReLU
          layers:
            - branches: [[cb], [cb]]
              merge: add
              name: pair
            - GlobalAveragePooling2D
        """)
    pair, gap = summary.layers
    assert (pair.name, pair.type, pair.output_shape) == ("pair", "branches (add)", [4, 4, 3])
    assert sorted(c.name for c in pair.children) == ["pair.add", "pair.b0.cb.batch_normalization",
                                                    "pair.b0.cb.conv2d", "pair.b0.cb.re_lu",
                                                    "pair.b1.cb.batch_normalization", "pair.b1.cb.conv2d",
                                                    "pair.b1.cb.re_lu"]
    per_branch = 2 * 2 * 48 + 2 * 48 + 48      # 1x1 conv from 2 channels, BN 2/element, ReLU 1/element
    assert pair.flops == 2 * per_branch + 48   # + the add
    assert gap.flops == 48
    assert (pair.params, summary.params, summary.non_trainable_params) == (36, 36, 12)


def test_rendered_table_and_expand(tmp_path):
    summary = summary_of(tmp_path, """\
        name: shown
        input: {shape: [8, 8, 1]}
        model:
          blocks:
            cb:
              params: [filters]
              layers: [Conv2D: {filters: $filters, kernel_size: 3, padding: same}, ReLU]
          layers:
            - cb: {filters: 4}
              name: stem
            - Flatten
        """)
    text = rendered(summary)
    assert "shown  (input (8, 8, 1))" in text
    assert "│ stem    │ block cb │ (8, 8, 4)    │     40 │        5,120 │" in text
    assert "params: 40  (trainable 40, non-trainable 0)" in text
    assert "forward FLOPs per sample: 5,120 (5.12 KFLOPs)" in text
    assert "weight memory: 160 B" in text
    assert "conv2d" not in text
    expanded = rendered(summary, expand=True)
    assert "│   conv2d │ Conv2D   │ (8, 8, 4)    │     40 │        4,864 │" in expanded
    assert "│   re_lu  │ ReLU     │ (8, 8, 4)    │      0 │          256 │" in expanded
    assert "stem.conv2d" not in expanded


# --- FLOPs against TensorFlow's profiler ---------------------------------------------------------

def profiler_flops(model) -> int:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops


@pytest.mark.parametrize("name, overrides", [
    ("lenet", []),
    ("lenet5", []),
    ("cnn1d", []),
    # VGG16 and Inception at 32x32 so that freezing the graph stays fast; both counters see the
    # same (smaller) model, and every layer kind is still there.
    ("vgg16", ["input.shape=[32,32,3]"]),
    ("inception_v2", ["input.shape=[32,32,3]", "model.layers[-3].AveragePooling2D.pool_size=1"]),
])
def test_flops_agree_with_tensorflow_profiler(name, overrides):
    """Within 1%: we also count elementwise activations (1 per element), which the profiler skips."""
    config = load_config(CONFIGS / f"{name}.yaml", overrides)
    built = build_model(config)
    ours = summarize(config, built).flops
    theirs = profiler_flops(built.model)
    assert theirs > 0
    assert abs(ours - theirs) / theirs < 0.01, (ours, theirs)


def test_lenet_flops_pinned(build_shipped):
    """Profiler: 13,095,520; we add 25,980 ReLU evaluations."""
    config, built = build_shipped("lenet")
    assert summarize(config, built).flops == 13_121_500
