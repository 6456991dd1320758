"""The builder: shipped configs build with their documented sizes and train a step; blocks, branches,
`repeat` and `$param` make exactly the model that hand-written functional Keras makes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.config import load_config
from cnnzoo.config.options import optimizer_classes
from cnnzoo.errors import ConfigError
from cnnzoo.model.builder import build_model
from data_fixtures import FROM_DATA

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml"))

# Parameter counts as `cnnzoo summary` reports them. A new config must be added here on purpose.
EXPECTED_PARAMS = {
    "lenet": 1_256_080,
    "lenet5": 61_706,
    "alexnet": 71_982_481,
    "vgg16": 134_330_193,
    "inception_v2": 10_307_697,
    "cnn1d": 86_721,
    "lenet_bn": 1_625_894,
    "cnn1d_fcn": 25_858,
    "inception_v2_gap": 10_297_681,
    "resnet50": 25_636_712,       # keras.applications.ResNet50(weights=None)
    "mobilenet_v2": 3_538_984,    # keras.applications.MobileNetV2(weights=None)
    "efficientnet_b0": 5_330_571,  # keras.applications.EfficientNetB0(weights=None)
    "lenet_finetune": 1_256_080,
    "linear_regression": 2,
    "iris_mlp": 67,
    "lenet5_1998": 60_840,         # the paper's count: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 + 840
    "lenet_deep": 326_826,
    "resnet18_flowers": 2_805_745,
    "resnet18_flowers_128px": 2_805_745,
    "alexnet_bn": 2_477_521,
    "vgg11_gap": 2_314_737,
    "cnn1d_fcn_wang": 265_986,     # at ECG200's 96x1 and 2 classes (data_fixtures.FROM_DATA)
    "cnn1d_resnet_wang": 506_818,
}

# The smallest inputs at which each net still builds, for a fast training step. AlexNet needs
# ceil(x/4) >= 8 and VGG16 x >= 32 (five 2x2 pools); Inception's final 7x7 average pool needs
# x >= 193, so at 32x32 it pools 1x1 instead (no parameters change: it feeds a Flatten of 1x1x1024).
SMALL_INPUT = {
    "alexnet": ["input.shape=[32,32,3]"],
    "vgg16": ["input.shape=[32,32,3]"],
    "inception_v2": ["input.shape=[32,32,3]", "model.layers[-3].AveragePooling2D.pool_size=1"],
    "cnn1d": ["input.shape=[64,1]"],
    "cnn1d_fcn": ["input.shape=[64,1]"],
    "inception_v2_gap": ["input.shape=[32,32,3]"],
    "resnet50": ["input.shape=[32,32,3]", "model.layers[-1].Dense.units=10"],
    "mobilenet_v2": ["input.shape=[32,32,3]", "model.layers[-1].Dense.units=10"],
    "efficientnet_b0": ["input.shape=[32,32,3]", "model.layers[-1].Dense.units=10"],
    "resnet18_flowers": ["input.shape=[32,32,3]"],
    "resnet18_flowers_128px": ["input.shape=[32,32,3]"],
    "alexnet_bn": ["input.shape=[32,32,3]"],
    "vgg11_gap": ["input.shape=[32,32,3]"],
    **FROM_DATA,
}


def write(folder: Path, text: str) -> Path:
    path = folder / "model.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def layer_table(model) -> list[tuple[str, tuple, int]]:
    """(class, output shape, parameters) per layer, in the model's order, without the input layer."""
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers[1:]]


# --- shipped configs -----------------------------------------------------------------------------

def test_every_shipped_config_has_an_expected_count():
    missing = sorted(set(SHIPPED) - set(EXPECTED_PARAMS))
    assert not missing, f"add the parameter count of {missing} to EXPECTED_PARAMS (from `cnnzoo summary`)"
    assert set(EXPECTED_PARAMS) <= set(SHIPPED), "EXPECTED_PARAMS names a config that no longer ships"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_builds_with_documented_parameter_count(name, build_shipped):
    config, built = build_shipped(name)
    model = built.model
    assert model.count_params() == EXPECTED_PARAMS.get(name), name
    assert tuple(model.input_shape[1:]) == config.input.shape
    documented = re.search(r"([\d,]+) parameters", config.description)
    if documented:
        assert int(documented.group(1).replace(",", "")) == model.count_params()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_trains_one_step_at_small_input(name):
    config = load_config(CONFIGS / f"{name}.yaml", SMALL_INPUT.get(name, []))
    model = build_model(config).model
    rng = np.random.default_rng(0)
    x = rng.random((4, *config.input.shape), dtype=np.float32)
    units = model.output_shape[-1]
    y = (np.array([[0], [1], [1], [0]], np.float32) if config.train.loss == "binary_crossentropy"
         else np.arange(4) % units)
    if config.train.loss == "categorical_crossentropy":  # mixed or smoothed labels are one-hot
        y = np.eye(units, dtype=np.float32)[y]
    optimizer = optimizer_classes()[config.train.optimizer.lower()](**config.train.optimizer_args)
    model.compile(optimizer=optimizer, loss=config.train.loss, run_eagerly=True)  # one step: skip tracing
    before = [w.copy() for w in model.get_weights()]
    loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, a) for b, a in zip(before, model.get_weights())]
    assert sum(changed) >= len(model.trainable_weights) // 2, f"only {sum(changed)} weight arrays changed"


@pytest.mark.parametrize("name, shape, failing_entry", [
    ("alexnet", "[28,28,3]", "model.layers[7].MaxPooling2D"),   # 28/4 = 7 -> 3 -> 1 -> 0
    ("vgg16", "[31,31,3]",                                      # the fifth 2x2 pool meets a 1x1 map
     "model.blocks.vgg_stage.layers[1].MaxPooling2D (in block `vgg_stage` used at model.layers[4] line 20)"),
])
def test_small_inputs_are_the_smallest_that_build(name, shape, failing_entry):
    with pytest.raises(ConfigError) as info:
        build_model(load_config(CONFIGS / f"{name}.yaml", [f"input.shape={shape}"]))
    assert info.value.path == failing_entry
    assert "zero" in info.value.message


def test_inception_needs_its_pool_override_at_small_input():
    with pytest.raises(ConfigError) as info:
        build_model(load_config(CONFIGS / "inception_v2.yaml", ["input.shape=[32,32,3]"]))
    assert info.value.path == "model.layers[15].AveragePooling2D"
    assert "cannot take input of shape (None, 1, 1, 1024)" in info.value.message


def test_vgg16_block_repeat_expands_to_thirteen_convolutions():
    config = load_config(CONFIGS / "vgg16.yaml")
    stages = [node for node in config.layers if hasattr(node, "block")]
    assert [len([c for c in s.children if c.type == "Conv2D"]) for s in stages] == [2, 2, 3, 3, 3]
    assert stages[2].children[1].name == "vgg_stage_2.conv2d_1"


# --- blocks, branches, repeat and $param against hand-written Keras --------------------------------

BLOCKS_CONFIG = """\
    name: blocks
    input: {shape: [32, 32, 3]}
    model:
      blocks:
        conv_bn:
          params: [filters, kernel: 3, strides: 1]
          layers:
            - Conv2D: {filters: $filters, kernel_size: $kernel, strides: $strides, padding: same,
                       use_bias: false, name: "conv${kernel}x${kernel}"}
            - BatchNormalization
            - ReLU
        mixed:
          params: [width, pool: MaxPooling2D]
          layers:
            - branches:
                - [conv_bn: {filters: $width, kernel: 1}]
                - [conv_bn: {filters: $width, kernel: 1}, conv_bn: {filters: $width}]
                - [$pool: {pool_size: 3, strides: 1, padding: same}]
              merge: concatenate
        stack:
          params: [n, units]
          layers:
            - Dense: {units: $units, activation: relu}
              repeat: $n
      layers:
        - conv_bn: {filters: 16, strides: 2}
          name: stem
        - conv_bn: {filters: 16}
          repeat: 2
        - branches:
            - [conv_bn: {filters: 16}, Conv2D: {filters: 16, kernel_size: 3, padding: same}]
            - []
          merge: add
        - mixed: {width: 8}
        - mixed: {width: 8, pool: AveragePooling2D}
        - Conv2D: {filters: 8, kernel_size: 1, activation: relu}
          repeat: 3
        - GlobalAveragePooling2D
        - stack: {n: 2, units: 12}
        - Dense: {units: 10, activation: softmax}
    """


def hand_written_blocks_model():
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel=3, strides=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    def mixed(x, width, pool=layers.MaxPooling2D):
        a = conv_bn(x, width, 1)
        b = conv_bn(conv_bn(x, width, 1), width)
        c = pool(pool_size=3, strides=1, padding="same")(x)
        return layers.Concatenate()([a, b, c])

    inputs = keras.Input((32, 32, 3))
    x = conv_bn(inputs, 16, strides=2)
    x = conv_bn(conv_bn(x, 16), 16)
    x = layers.Add()([layers.Conv2D(16, 3, padding="same")(conv_bn(x, 16)), x])
    x = mixed(x, 8)
    x = mixed(x, 8, layers.AveragePooling2D)
    for _ in range(3):
        x = layers.Conv2D(8, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    for _ in range(2):
        x = layers.Dense(12, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def test_blocks_branches_repeat_match_hand_written_keras(tmp_path):
    built = build_model(load_config(write(tmp_path, BLOCKS_CONFIG)))
    reference = hand_written_blocks_model()
    assert layer_table(built.model) == layer_table(reference)
    assert built.model.count_params() == reference.count_params()
    assert len(built.model.non_trainable_weights) == len(reference.non_trainable_weights)


def test_block_layers_are_named_after_instance_and_interpolated_params(tmp_path):
    names = {layer.name for layer in build_model(load_config(write(tmp_path, BLOCKS_CONFIG))).model.layers}
    assert {"stem.conv3x3", "stem.batch_normalization", "stem.re_lu",
            "conv_bn.conv3x3", "conv_bn_1.conv3x3",
            "branches.b0.conv_bn.conv3x3", "branches.add",
            "mixed.branches.b0.conv_bn.conv1x1", "mixed.branches.b1.conv_bn_1.conv3x3",
            "mixed.branches.b2.max_pooling2d", "mixed_1.branches.b2.average_pooling2d",
            "mixed_1.branches.concatenate", "conv2d", "conv2d_2", "stack.dense_1"} <= names


def test_builder_records_entry_and_group_of_every_layer(tmp_path):
    config = load_config(write(tmp_path, BLOCKS_CONFIG))
    built = build_model(config)
    assert set(built.where) == {layer.name for layer in built.model.layers[1:]}
    assert built.group["stem.re_lu"] == 0
    assert built.group["mixed_1.branches.concatenate"] == 5
    assert built.where["mixed.branches.b0.conv_bn.conv1x1"].path == "model.blocks.conv_bn.layers[0].Conv2D"
    assert built.where["conv2d_2"].line == 36


def test_residual_identity_branch_matches_keras(tmp_path):
    import keras
    from keras import layers

    path = write(tmp_path, """\
        name: residual
        input: {shape: [20, 4]}
        model:
          layers:
            - Conv1D: {filters: 6, kernel_size: 3, padding: same}
            - branches:
                - [Conv1D: {filters: 6, kernel_size: 3, padding: same, activation: relu},
                   Conv1D: {filters: 6, kernel_size: 3, padding: same}]
                - []
              merge: add
              repeat: 2
            - branches: [[Dense: {units: 6}], [Dense: {units: 6}], []]
              merge: maximum
            - Flatten
            - Dense: {units: 1, activation: sigmoid}
        """)
    built = build_model(load_config(path)).model
    inputs = keras.Input((20, 4))
    x = layers.Conv1D(6, 3, padding="same")(inputs)
    for _ in range(2):
        y = layers.Conv1D(6, 3, padding="same", activation="relu")(x)
        x = layers.Add()([layers.Conv1D(6, 3, padding="same")(y), x])
    x = layers.Maximum()([layers.Dense(6)(x), layers.Dense(6)(x), x])
    reference = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(layers.Flatten()(x)))
    assert layer_table(built) == layer_table(reference)


def test_built_model_computes_what_the_layers_say(tmp_path):
    """Same weights in, same numbers out: the graph is wired like the hand-written one."""
    built = build_model(load_config(write(tmp_path, BLOCKS_CONFIG))).model
    reference = hand_written_blocks_model()
    reference.set_weights(built.get_weights())
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(built.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_nested_wrapper_layer_argument(tmp_path):
    path = write(tmp_path, """\
        name: wrapped
        input: {shape: [10, 3]}
        model:
          layers:
            - Bidirectional: {layer: {LSTM: {units: 4, return_sequences: true}}}
            - TimeDistributed: {layer: {Dense: {units: 2}}}
        """)
    model = build_model(load_config(path)).model
    assert model.output_shape == (None, 10, 2)
    assert model.count_params() == 2 * (4 * (3 + 4 + 1) * 4) + (8 * 2 + 2)
