"""Config loading: `base:` inheritance, `--set` overrides, typed sections, and exact error locations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cnnzoo.config import BlockNode, BranchNode, LayerNode, load_config
from cnnzoo.config.options import CheckpointSpec, CosineSchedule, EarlyStoppingSpec, StepSchedule
from cnnzoo.config.source import load_document, parse_override
from cnnzoo.errors import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
LENET_LIKE = textwrap.dedent("""\
    name: small
    input:
      shape: [28, 28, 1]
    model:
      layers:
        - Conv2D: {filters: 4, kernel_size: 3, activation: relu}
        - MaxPooling2D: {pool_size: 2}
        - Flatten
        - Dense: {units: 10, activation: softmax}
    train:
      epochs: 3
      optimizer: {name: adam, learning_rate: 0.001}
      loss: sparse_categorical_crossentropy
    """)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, overrides: list[str] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    return info.value


# --- a valid config becomes typed spec objects ---------------------------------------------------

def test_valid_config_becomes_typed_spec(tmp_path):
    config = load_config(write(tmp_path, "small.yaml", LENET_LIKE))
    assert config.name == "small"
    assert config.input.shape == (28, 28, 1) and config.input.dtype == "float32"
    assert [type(n) for n in config.layers] == [LayerNode] * 4
    assert [n.type for n in config.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert [n.name for n in config.layers] == ["conv2d", "max_pooling2d", "flatten", "dense"]
    assert config.layers[0].args == {"filters": 4, "kernel_size": 3, "activation": "relu"}
    assert config.layers[2].args == {}
    assert config.train.epochs == 3 and config.train.batch_size == 32
    assert config.train.optimizer == "adam" and config.train.optimizer_args == {"learning_rate": 0.001}
    assert config.train.schedule.name == "constant"
    assert (config.train.checkpoint.monitor, config.train.checkpoint.mode) == ("val_accuracy", "max")
    assert config.data is None
    assert config.resolved["train"]["epochs"] == 3


def test_name_defaults_to_file_stem(tmp_path):
    text = LENET_LIKE.replace("name: small\n", "")
    assert load_config(write(tmp_path, "from-stem.yaml", text)).name == "from-stem"


def test_section_defaults_and_shorthands(tmp_path):
    path = write(tmp_path, "c.yaml", LENET_LIKE + "data:\n  dataset: ucr\n  name: FordA\n  limit: 100\n")
    text = path.read_text().replace("  epochs: 3\n", "  epochs: 3\n  schedule: cosine\n  early_stopping: true\n"
                                    "  metrics: accuracy\n  checkpoint: {monitor: val_loss, mode: min}\n")
    path.write_text(text)
    config = load_config(path)
    assert config.data.dataset == "ucr" and config.data.name == "FordA" and config.data.limit == 100
    assert config.data.validation_split == 0.2 and config.data.test_split == 0.2 and config.data.scale is None
    assert config.train.schedule == CosineSchedule()
    assert config.train.early_stopping == EarlyStoppingSpec(mode="min")
    assert config.train.metrics == ("accuracy",)
    assert config.train.checkpoint == CheckpointSpec(monitor="val_loss", mode="min")


def test_exponent_floats_are_numbers(tmp_path):
    """PyYAML alone reads 1e-4 as a string; configs and --set must get a float."""
    path = write(tmp_path, "c.yaml", LENET_LIKE.replace("learning_rate: 0.001", "learning_rate: 1e-4"))
    config = load_config(path, ["train.learning_rate=2e-3"])
    assert config.train.optimizer_args == {"learning_rate": 1e-4}
    assert config.train.learning_rate == 2e-3


# --- base: inheritance ---------------------------------------------------------------------------

def test_base_mappings_merge_and_lists_replace(tmp_path):
    write(tmp_path, "shared/base.yaml", LENET_LIKE)
    child = write(tmp_path, "child.yaml", """\
        base: shared/base.yaml
        name: child
        model:
          layers:
            - Flatten
            - Dense: {units: 3}
        train:
          epochs: 7
          optimizer: {name: sgd, momentum: 0.9}
        """)
    config = load_config(child)
    assert config.name == "child"
    assert config.input.shape == (28, 28, 1)                               # inherited section
    assert [n.type for n in config.layers] == ["Flatten", "Dense"]         # list replaced, not appended
    assert config.train.epochs == 7                                        # scalar replaced
    assert config.train.loss == "sparse_categorical_crossentropy"          # sibling key kept
    assert config.train.optimizer == "sgd"
    assert config.train.optimizer_args == {"momentum": 0.9, "learning_rate": 0.001}  # mappings merge deeply
    assert "base" not in config.resolved


def test_base_chain_and_relative_paths(tmp_path):
    write(tmp_path, "a/root.yaml", LENET_LIKE)
    write(tmp_path, "a/b/middle.yaml", "base: ../root.yaml\ntrain: {epochs: 5, batch_size: 16}\n")
    leaf = write(tmp_path, "leaf.yaml", "base: a/b/middle.yaml\ntrain: {epochs: 9}\n")
    config = load_config(leaf)
    assert (config.train.epochs, config.train.batch_size) == (9, 16)
    assert config.name == "small"


def test_base_blocks_are_inherited_and_extendable(tmp_path):
    write(tmp_path, "base.yaml", """\
        name: base
        input: {shape: [8, 8, 3]}
        model:
          blocks:
            conv_bn:
              params: [filters]
              layers: [Conv2D: {filters: $filters, kernel_size: 3, padding: same}, BatchNormalization]
          layers: [conv_bn: {filters: 4}, Flatten]
        """)
    child = write(tmp_path, "child.yaml", """\
        base: base.yaml
        model:
          blocks:
            head:
              layers: [GlobalAveragePooling2D]
          layers: [conv_bn: {filters: 8}, head]
        """)
    config = load_config(child)
    assert [(type(n), getattr(n, "block", None)) for n in config.layers] == [(BlockNode, "conv_bn"),
                                                                             (BlockNode, "head")]
    assert config.layers[0].params == {"filters": 8}


@pytest.mark.parametrize("files, start, message", [
    ({"self.yaml": "base: self.yaml\n"}, "self.yaml", "`base: self.yaml` makes a cycle"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: c.yaml\n", "c.yaml": "base: a.yaml\n"}, "a.yaml",
     "`base: a.yaml` makes a cycle"),
])
def test_base_cycles_are_refused(tmp_path, files, start, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    error = error_of(tmp_path / start)
    assert message in error.message and error.path == "base" and error.line == 1


def test_base_must_be_a_file_name(tmp_path):
    error = error_of(write(tmp_path, "c.yaml", "name: x\nbase: [a.yaml]\n"))
    assert (error.line, error.path) == (2, "base") and "`base` must be a file name" in error.message


def test_error_in_inherited_part_points_at_the_base_file(tmp_path):
    base = write(tmp_path, "base.yaml", LENET_LIKE.replace("kernel_size: 3,", "kernel_size: 3, strides: two,"))
    child = write(tmp_path, "child.yaml", "base: base.yaml\ntrain: {epochs: 1}\n")
    assert str(error_of(child)).startswith(f"{base}:6 model.layers[0].Conv2D.strides: ")


def test_error_in_child_points_at_the_child_file(tmp_path):
    write(tmp_path, "base.yaml", LENET_LIKE)
    child = write(tmp_path, "child.yaml", "base: base.yaml\n\ntrain:\n  epochs: -1\n")
    assert str(error_of(child)).startswith(f"{child}:4 train.epochs: `epochs` must be an integer")


# --- --set overrides -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, path, value", [
    ("train.epochs=2", ("train", "epochs"), 2),
    ("train.learning_rate=0.01", ("train", "learning_rate"), 0.01),
    ("train.learning_rate=1e-3", ("train", "learning_rate"), 0.001),
    ("train.jit_compile=false", ("train", "jit_compile"), False),
    ("train.optimizer=sgd", ("train", "optimizer"), "sgd"),
    ("train.loss=", ("train", "loss"), None),
    ("input.shape=[16,16,1]", ("input", "shape"), [16, 16, 1]),
    ("train.optimizer={name: sgd, momentum: 0.9}", ("train", "optimizer"), {"name": "sgd", "momentum": 0.9}),
    ("model.layers[0].Conv2D.filters=8", ("model", "layers", 0, "Conv2D", "filters"), 8),
    ("model.layers.0.Conv2D.filters=8", ("model", "layers", 0, "Conv2D", "filters"), 8),
    ("model.layers[-1].Dense.units=3", ("model", "layers", -1, "Dense", "units"), 3),
    ("name=a=b", ("name",), "a=b"),
])
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


def test_overrides_apply_in_order_with_types(tmp_path):
    path = write(tmp_path, "c.yaml", LENET_LIKE)
    config = load_config(path, ["model.layers[0].Conv2D.filters=8", "model.layers.3.Dense.units=5",
                                "input.shape=[16,16,1]", "train.epochs=2", "train.epochs=4",
                                "train.batch_size=64", "data.dataset=mnist", "train.schedule={name: step, every: 2}"])
    assert config.layers[0].args["filters"] == 8
    assert config.layers[3].args["units"] == 5
    assert config.input.shape == (16, 16, 1)
    assert (config.train.epochs, config.train.batch_size) == (4, 64)
    assert config.data.dataset == "mnist"                     # a missing section is created
    assert config.train.schedule == StepSchedule(every=2)
    assert config.resolved["model"]["layers"][0]["Conv2D"]["filters"] == 8


def test_overrides_apply_after_base(tmp_path):
    write(tmp_path, "base.yaml", LENET_LIKE)
    child = write(tmp_path, "child.yaml", "base: base.yaml\ntrain: {epochs: 7}\n")
    assert load_config(child, ["train.epochs=1"]).train.epochs == 1


def test_override_errors_name_the_override(tmp_path):
    path = write(tmp_path, "c.yaml", LENET_LIKE)
    error = error_of(path, ["model.layers[0].Conv2D.filters=twenty"])
    assert str(error).startswith("--set model.layers[0].Conv2D.filters=twenty model.layers[0].Conv2D.filters: "
                                 "Conv2D argument `filters` must be an integer")
    error = error_of(path, ["train.epochs=zero"])
    assert str(error).startswith("--set train.epochs=zero train.epochs: `epochs` must be an integer")


@pytest.mark.parametrize("override, fragment", [
    ("train.epochs", "has no '='"),
    ("=3", "empty part in key path"),
    ("train..epochs=3", "empty part in key path"),
    ("model.layers[9].Dense.units=3", "model.layers[9] does not exist in the config"),
    ("model.layers[2].Flatten.name=f", "model.layers[2].Flatten does not exist"),  # a bare-name entry
    ("input.shape.0.x=1", "cannot set input.shape[0].x (parent is not a mapping)"),
    ("train.epochs=!!python/name:os.system", "is not allowed"),
    ("train.epochs=[1, 2", "YAML syntax error"),
])
def test_bad_overrides(tmp_path, override, fragment):
    error = error_of(write(tmp_path, "c.yaml", LENET_LIKE), [override])
    assert fragment in str(error) and error.file.startswith("--set")


# --- exact error locations -----------------------------------------------------------------------

@pytest.mark.parametrize("text, location", [
    ("name: x\ninput:\n  shape: [4]\nmodel:\n  layers: [Flatten]\nname: y\n", ":6 name: key 'name' appears twice"),
    ("name: x\ninput:\n  shape: [4]\nmodel:\n  layers:\n    - Dense: {units: 3, units: 4}\n",
     ":6 model.layers[0].Dense.units: key 'units' appears twice"),
    ("name: x\ninput:\n  shape: [4]\nmodel:\n  layers:\n    - Dense:\n        units: 3\n\n        use_bias: 1\n",
     ":9 model.layers[0].Dense.use_bias: Dense argument `use_bias` must be true or false"),
    ("name: x\ninput:\n  shape: [4]\n  dtpye: float32\nmodel:\n  layers: [Flatten]\n",
     ":4 input.dtpye: unknown key `dtpye`"),
    ("name: x\ninput:\n  shape: [4]\nmodel:\n  layers: [Flatten]\n  blcoks: {}\n",
     ":6 model.blcoks: unknown key `blcoks`"),
    ("name: x\ninput:\n  shape: [4]\nmodel:\n  layers:\n    - Flatten\n    -\n      Dense: {units: 2}\n"
     "      repeat: 0\n", ":8 model.layers[1].repeat: `repeat` must be an integer"),
    ("name: x\ninput: {shape: [4]}\nmodel:\n  blocks:\n    b:\n      params: [n]\n      layers:\n"
     "        - Dense: {units: $m}\n  layers: [b: {n: 1}]\n",
     ":8 model.blocks.b.layers[0].Dense.units (in block `b` used at model.layers[0] line 9): "
     "undefined block parameter `$m`"),
])
def test_error_location_is_exact(tmp_path, text, location):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert str(error_of(path)).startswith(f"{path}{location}")


def test_config_error_formats_location_message_hint():
    error = ConfigError("bad thing.", file="c.yaml", line=3, path="train.epochs", hint="Fix it.")
    assert str(error) == "c.yaml:3 train.epochs: bad thing. Fix it."
    assert str(ConfigError("gone.", file="c.yaml")) == "c.yaml: gone."


def test_alias_bomb_fails_fast(broken_configs_dir):
    import time

    start = time.process_time()  # CPU seconds: a loaded machine does not stretch them
    with pytest.raises(ConfigError, match="expands to more than"):
        load_document(broken_configs_dir / "billion_laughs.yaml")
    assert time.process_time() - start < 2


def test_plain_anchors_and_merge_keys_still_work(tmp_path):
    path = write(tmp_path, "c.yaml", """\
        name: anchors
        input: {shape: [8, 8, 3]}
        model:
          layers:
            - Conv2D: &conv {filters: 4, kernel_size: 3, padding: same}
            - Conv2D: {<<: *conv, filters: 8}
            - Conv2D: *conv
        """)
    config = load_config(path)
    assert [n.args["filters"] for n in config.layers] == [4, 8, 4]
    assert config.layers[1].args == {"filters": 8, "kernel_size": 3, "padding": "same"}


# --- model entries -------------------------------------------------------------------------------

def test_blocks_branches_repeat_expand_to_named_nodes(tmp_path):
    path = write(tmp_path, "c.yaml", """\
        name: shapes
        input: {shape: [8, 8, 3]}
        model:
          blocks:
            unit:
              params: [filters, kernel: 3, act: relu]
              layers:
                - Conv2D: {filters: $filters, kernel_size: $kernel, padding: same, activation: $act,
                           name: "conv${kernel}_${act}"}
          layers:
            - unit: {filters: 4}
              name: stem
            - unit: {filters: 4, kernel: 1, act: tanh}
              repeat: 2
            - branches: [[unit: {filters: 2}], []]
              merge: add
              name: res
            - Flatten
        """)
    layers = load_config(path).layers
    assert [type(n) for n in layers] == [BlockNode, BlockNode, BlockNode, BranchNode, LayerNode]
    stem = layers[0]
    assert stem.name == "stem" and stem.params == {"filters": 4, "kernel": 3, "act": "relu"}
    assert [c.name for c in stem.children] == ["stem.conv3_relu"]
    assert stem.children[0].args == {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu",
                                     "name": "conv3_relu"}
    assert [n.name for n in layers[1:3]] == ["unit", "unit_1"]          # repeat makes distinct instances
    assert layers[2].children[0].name == "unit_1.conv1_tanh"
    res = layers[3]
    assert res.name == "res" and res.merge == "add"
    assert [len(b) for b in res.branches] == [1, 0]
    assert res.branches[0][0].name == "res.b0.unit"
    assert res.branches[0][0].children[0].name == "res.b0.unit.conv3_relu"


def test_dollar_param_keeps_type_and_braces_interpolate(tmp_path):
    path = write(tmp_path, "c.yaml", """\
        name: subst
        input: {shape: [8]}
        model:
          blocks:
            fc:
              params: [units, drop: 0.5, bias: true, tag: x]
              layers:
                - Dense: {units: $units, use_bias: $bias, name: "fc_${units}_$tag"}
                - Dropout: {rate: $drop}
          layers: [fc: {units: 16}]
        """)
    dense, dropout = load_config(path).layers[0].children
    assert dense.args == {"units": 16, "use_bias": True, "name": "fc_16_x"}
    assert dropout.args == {"rate": 0.5}


# --- loss, metric and monitor names: caught with the config, not when fit starts -------------------

@pytest.mark.parametrize("override, path, message, hint", [
    ("train.loss=sparse_categorical_crosentropy", "train.loss", "unknown loss 'sparse_categorical_crosentropy'",
     "`sparse_categorical_crossentropy`"),
    ("train.loss=msee", "train.loss", "unknown loss 'msee'", "`mse`"),
    ("train.metrics=[accuracy, acuracy]", "train.metrics[1]", "unknown metric 'acuracy'", "`accuracy`"),
    ("train.checkpoint={monitor: val_acc}", "train.checkpoint.monitor",
     "monitor 'val_acc' names no column of the training history, which logs loss, accuracy", "`val_accuracy`"),
    ("train.early_stopping={monitor: val_los}", "train.early_stopping.monitor", "monitor 'val_los'", "`val_loss`"),
    ("train.schedule={name: plateau, monitor: val_accurcy}", "train.schedule.monitor", "monitor 'val_accurcy'",
     "`val_accuracy`"),
])
def test_misspelt_loss_metric_or_monitor_is_a_located_error(tmp_path, override, path, message, hint):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    error = error_of(config, [override])
    assert error.path == path and message in error.message and hint in (error.hint or ""), str(error)


@pytest.mark.parametrize("overrides, path, message", [
    (["train.metrics=[MeanIoU]"], "train.metrics[0]", "metric 'MeanIoU' needs arguments (num_classes"),
    (["train.metrics=[Mean]"], "train.metrics[0]", "unknown metric 'Mean'"),
    (["train.metrics=[ce]"], "train.metrics[0]", "unknown metric 'ce'"),  # a loss alias, not a metric one
    (["train.task=classification", "train.metrics=[accuracy, rmse]"], "train.metrics[1]", "unknown metric 'rmse'"),
    (["train.metrics=[auc]", "train.checkpoint={mode: max}"], "train.checkpoint.monitor", None),
    (["train.loss=mse", "train.checkpoint={monitor: val_accuracy}"], "train.checkpoint.monitor",
     "which logs loss, mae, rmse, r2"),  # a regression run logs no accuracy
])
def test_names_keras_would_refuse_or_never_log(tmp_path, overrides, path, message):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    if message is None:  # a checkpoint mapping without monitor takes the default that the history logs
        assert load_config(config, overrides).train.checkpoint == CheckpointSpec(monitor="val_loss", mode="max")
        return
    error = error_of(config, overrides)
    assert error.path == path and message in error.message, str(error)


def test_compile_aliases_and_a_saved_run_config_load(tmp_path):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    assert load_config(config, ["train.loss=ce", "train.metrics=[Acc]"]).train.loss == "ce"
    old_run = write(tmp_path, "run/config.yaml", LENET_LIKE + "  checkpoint: {monitor: val_acc}\n")
    with pytest.raises(ConfigError, match="monitor 'val_acc'"):
        load_config(old_run)
    assert load_config(old_run, check_names=False).train.checkpoint.monitor == "val_acc"  # eval, predict, export


def test_name_checks_leave_tensorflow_unstarted():
    """Resolving a metric builds its variables and starts TensorFlow's runtime, after which a
    multi-worker strategy cannot be configured: the checks only look names up."""
    import subprocess
    import sys

    probe = ("import tensorflow as tf; from cnnzoo.config import load_config; "
             f"load_config({str(REPO_CONFIGS / 'lenet.yaml')!r}, ['train.metrics=[accuracy, auc, "
             "top_k_categorical_accuracy]', 'train.checkpoint.monitor=val_auc']); "
             "from tensorflow.python.eager import context; print(context.context()._context_handle is None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]


def test_known_names_and_logged_monitors_pass(tmp_path):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    overrides = ["train.loss=categorical_crossentropy", "train.metrics=[acc, auc, top_k_categorical_accuracy]",
                 "train.checkpoint={monitor: val_auc}", "train.early_stopping={monitor: acc}",
                 "train.schedule={name: plateau, monitor: val_top_k_categorical_accuracy}"]
    spec = load_config(config, overrides).train
    assert spec.checkpoint == CheckpointSpec(monitor="val_auc", mode="max")
    assert spec.early_stopping.monitor == "acc" and spec.schedule.mode == "max"
    regression = load_config(config, ["train.loss=huber", "train.checkpoint={monitor: val_rmse}"]).train
    assert regression.checkpoint == CheckpointSpec(monitor="val_rmse", mode="min")


@pytest.mark.parametrize("metrics, checkpoint", [
    ("[accuracy, auc]", CheckpointSpec(monitor="val_accuracy", mode="max")),
    ("[acc]", CheckpointSpec(monitor="val_acc", mode="max")),
    ("[auc]", CheckpointSpec(monitor="val_loss", mode="min")),  # was val_accuracy: a column never logged
])
def test_default_checkpoint_monitors_a_logged_column(tmp_path, metrics, checkpoint):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    assert load_config(config, [f"train.metrics={metrics}"]).train.checkpoint == checkpoint


def test_a_key_an_override_makes_is_blamed_on_the_override(tmp_path):
    config = write(tmp_path, "c.yaml", LENET_LIKE)
    error = error_of(config, ["trian.epochs=3"])  # was: c.yaml line 1, a line that never said `trian`
    assert (error.file, error.line, error.path) == ("--set trian.epochs=3", None, "trian")
    assert "Did you mean `train`?" in str(error)
    nested = error_of(config, ["train.early_stoping.patience=3"])
    assert nested.file == "--set train.early_stoping.patience=3" and nested.path == "train.early_stoping"
