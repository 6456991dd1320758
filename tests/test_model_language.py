"""The constructs after ResNet: broadcasting merges (squeeze-excitation), `$in_channels`, `when:`,
`residual:` and stochastic depth, each built for real and compared with hand-written Keras."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from cnnzoo.config import load_config
from cnnzoo.model.builder import build_model
from cnnzoo.model.flops import layer_flops
from cnnzoo.model.summary import summarize

SE_RESNET = """\
    name: se_resnet
    input: {shape: [16, 16, 8]}
    model:
      blocks:
        squeeze_excite:
          params: [ratio: 4]
          layers:
            - branches:
                - []
                - [GlobalAveragePooling2D: {keepdims: true},
                   Conv2D: {filters: "${max(1, in_channels // ratio)}", kernel_size: 1, activation: relu},
                   Conv2D: {filters: $in_channels, kernel_size: 1, activation: sigmoid}]
              merge: multiply
        se_basic:
          params: [filters, strides: 1]
          layers:
            - branches:
                - - Conv2D: {filters: $filters, kernel_size: 3, strides: $strides, padding: same, activation: relu}
                  - Conv2D: {filters: $filters, kernel_size: 3, padding: same}
                  - squeeze_excite
                - - Conv2D: {filters: $filters, kernel_size: 1, strides: $strides}
                    when: ${strides != 1 or in_channels != filters}
              merge: add
            - ReLU
      layers:
        - se_basic: {filters: 8}
        - se_basic: {filters: 16, strides: 2}
        - GlobalAveragePooling2D
        - Dense: {units: 3, activation: softmax}
    """


def write(folder: Path, text: str) -> Path:
    path = folder / "model.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def hand_written_se_resnet():
    import keras
    from keras import layers

    def se(x):
        channels = x.shape[-1]
        gate = layers.GlobalAveragePooling2D(keepdims=True)(x)
        gate = layers.Conv2D(max(1, channels // 4), 1, activation="relu")(gate)
        return layers.Multiply()([x, layers.Conv2D(channels, 1, activation="sigmoid")(gate)])

    def block(x, filters, strides=1):
        y = layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
        y = se(layers.Conv2D(filters, 3, padding="same")(y))
        shortcut = layers.Conv2D(filters, 1, strides=strides)(x) if strides != 1 or x.shape[-1] != filters else x
        return layers.ReLU()(layers.Add()([y, shortcut]))

    inputs = keras.Input((16, 16, 8))
    x = block(block(inputs, 8), 16, strides=2)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def table(model) -> list[tuple]:
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers[1:]]


def test_se_resnet_is_the_hand_written_keras_model(tmp_path):
    built = build_model(load_config(write(tmp_path, SE_RESNET))).model
    reference = hand_written_se_resnet()
    assert sorted(table(built)) == sorted(table(reference))
    reference.set_weights(built.get_weights())
    x = np.random.default_rng(0).random((2, 16, 16, 8), dtype=np.float32)
    np.testing.assert_allclose(built.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_identity_shortcut_where_shapes_agree_projection_where_not(tmp_path):
    names = [layer.name for layer in build_model(load_config(write(tmp_path, SE_RESNET))).model.layers]
    assert "se_basic.branches.b1.conv2d" not in names          # 8 -> 8 channels, stride 1: identity
    assert "se_basic_1.branches.b1.conv2d" in names             # stride 2 and 8 -> 16: projection
    assert "se_basic.branches.b0.squeeze_excite.branches.multiply" in names


def test_broadcast_multiply_scales_each_channel_and_counts_its_flops(tmp_path):
    config = load_config(write(tmp_path, SE_RESNET))
    model = build_model(config).model
    merge = model.get_layer("se_basic.branches.b0.squeeze_excite.branches.multiply")
    assert [tuple(t.shape) for t in merge.input] == [(None, 16, 16, 8), (None, 1, 1, 8)]
    assert tuple(merge.output.shape) == (None, 16, 16, 8)
    assert layer_flops(merge) == 16 * 16 * 8
    import keras

    probe = keras.Model(model.inputs, [merge.input[0], merge.input[1], merge.output])
    features, gate, product = probe.predict(np.ones((1, 16, 16, 8), np.float32), verbose=0)
    np.testing.assert_allclose(product, features * gate, rtol=1e-6)


def residual_config(folder: Path, residual: str, filters: int) -> Path:
    return write(folder, f"""\
        name: residual
        input: {{shape: [8, 8, 4]}}
        model:
          layers:
            - Conv2D: {{filters: {filters}, kernel_size: 3, padding: same, name: body}}
              residual: {residual}
            - Flatten
        """)


def test_residual_auto_adds_the_input_only_when_the_shapes_agree(tmp_path):
    same = build_model(load_config(residual_config(tmp_path, "auto", 4))).model
    assert [layer.name for layer in same.layers] == ["input", "body", "body.residual", "flatten"]
    x = np.random.default_rng(1).random((1, 8, 8, 4), dtype=np.float32)
    body = same.get_layer("body")
    np.testing.assert_allclose(same.predict(x, verbose=0).reshape(1, 8, 8, 4), body(x).numpy() + x, rtol=1e-5)
    wider = build_model(load_config(residual_config(tmp_path, "auto", 6))).model
    assert [layer.name for layer in wider.layers] == ["input", "body", "flatten"]


def test_when_false_leaves_an_entry_out_and_summary_says_so(tmp_path):
    path = write(tmp_path, """\
        name: guarded
        input: {shape: [8, 8, 4]}
        model:
          blocks:
            maybe:
              params: [expand: 1]
              layers:
                - Conv2D: {filters: "${in_channels * expand}", kernel_size: 1}
                  when: ${expand != 1}
                - Conv2D: {filters: 3, kernel_size: 1}
            only_if_wide:
              layers:
                - Conv2D: {filters: 2, kernel_size: 1}
                  when: ${in_channels > 4}
          layers:
            - Dropout: {rate: 0.5}
              when: false
            - maybe
            - maybe: {expand: 2}
            - only_if_wide
            - Flatten
        """)
    config = load_config(path)
    assert [node.name for node in config.layers] == ["maybe", "maybe_1", "only_if_wide", "flatten"]
    built = build_model(config)
    assert [layer.name for layer in built.model.layers[1:]] == ["maybe.conv2d", "maybe_1.conv2d", "maybe_1.conv2d_1",
                                                                "flatten"]
    assert built.model.get_layer("maybe_1.conv2d").filters == 3 * 2
    rows = summarize(config, built).layers
    assert [(row.type, row.output_shape, row.params) for row in rows[1:3]] == [
        ("block maybe", [8, 8, 3], 3 * 6 + 6 + 6 * 3 + 3), ("block only_if_wide (empty: when)", [8, 8, 3], 0)]


def test_stochastic_depth_dropout_drops_whole_samples_and_trains(tmp_path):
    import keras

    path = write(tmp_path, """\
        name: stochastic_depth
        input: {shape: [4, 4, 2]}
        model:
          layers:
            - branches:
                - [Conv2D: {filters: 2, kernel_size: 3, padding: same},
                   Dropout: {rate: 0.5, noise_shape: [null, 1, 1, 1], name: drop}]
                - []
              merge: add
            - GlobalAveragePooling2D
            - Dense: {units: 2, activation: softmax}
        """)
    model = build_model(load_config(path)).model
    drop = model.get_layer("branches.b0.drop")
    assert drop.noise_shape == (None, 1, 1, 1)
    x = np.ones((64, 4, 4, 2), np.float32)
    kept = drop(x, training=True).numpy().reshape(64, -1)
    assert {tuple(np.unique(row)) for row in kept} == {(0.0,), (2.0,)}  # each sample all dropped or all kept
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = model.get_weights()[0].copy()
    model.fit(x, np.arange(64) % 2, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(before, model.get_weights()[0])
    assert isinstance(drop, keras.layers.Dropout)


def test_every_model_example_in_the_docs_builds(tmp_path):
    """The config examples of README.md and docs/*.md (those that stand alone, without `base:`) build as printed."""
    repo = Path(__file__).resolve().parent.parent
    pages = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    examples = [text for page in pages for text in page.read_text().split("```yaml\n")[1:]]
    examples = [text.split("```")[0] for text in examples]
    standalone = [text for text in examples if "\nmodel:" in text and "base:" not in text]
    assert any("in_channels" in text and "when:" in text and "residual: auto" in text for text in standalone)
    for text in standalone:
        path = tmp_path / "example.yaml"
        path.write_text(text.replace("weights: imagenet", "weights: null"))  # offline: the architecture is checked
        assert build_model(load_config(path)).model.count_params() > 0
