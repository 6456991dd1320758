"""load_config(path, overrides) -> a fully validated ModelConfig, or a ConfigError that points at the line."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path

from cnnzoo.config.finetune import check_patterns, parse_freeze, parse_init_from
from cnnzoo.config.model import parse_model
from cnnzoo.config.sections import parse_data, parse_input, parse_train
from cnnzoo.config.source import Document, load_document, parse_text
from cnnzoo.config.spec import BlockNode, BranchNode, InputSpec, LayerNode, ModelConfig, Node, TrainSpec
from cnnzoo.layers import suggest

TOP_LEVEL_KEYS = ("name", "description", "input", "model", "data", "train")

__all__ = ["load_config", "config_from_document", "parse_text", "ModelConfig", "Node", "LayerNode",
           "BranchNode", "BlockNode", "InputSpec", "TrainSpec"]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ModelConfig:
    return config_from_document(load_document(Path(path), overrides))


def config_from_document(doc: Document) -> ModelConfig:
    resolved = copy.deepcopy(doc.data)
    for key in doc.data:
        if key not in TOP_LEVEL_KEYS:
            raise doc.error((key,), f"unknown top-level key `{key}` (allowed: {', '.join(TOP_LEVEL_KEYS)}).",
                            hint=suggest(str(key), list(TOP_LEVEL_KEYS)))
    name = doc.data.get("name") or Path(doc.file).stem
    if not isinstance(name, str) or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise doc.error(("name",), f"`name` must be a short identifier (letters, digits, -, _), received {name!r}.",
                        hint="It names the run folder, e.g. `name: lenet`.")
    description = doc.data.get("description") or ""
    if not isinstance(description, str):
        raise doc.error(("description",), "`description` must be text.")
    train = dataclasses.replace(parse_train(doc), freeze=parse_freeze(doc))
    _check_optimizer(doc, train)
    input_spec, layers, init_from = parse_input(doc), parse_model(doc), parse_init_from(doc)
    check_patterns(doc, layers, init_from, train.freeze)
    return ModelConfig(name=name, description=description, input=input_spec, layers=layers,
                       data=parse_data(doc), train=train, file=doc.file, resolved=resolved, init_from=init_from)


def _check_optimizer(doc: Document, train: TrainSpec) -> None:
    import keras

    classes = {n.lower(): getattr(keras.optimizers, n) for n in dir(keras.optimizers)
               if inspect.isclass(getattr(keras.optimizers, n))
               and issubclass(getattr(keras.optimizers, n), keras.optimizers.Optimizer)
               and n not in ("Optimizer", "LossScaleOptimizer")}
    cls = classes.get(train.optimizer.lower())
    if cls is None:
        raise doc.error(("train", "optimizer"), f"unknown optimizer {train.optimizer!r}.",
                        hint=suggest(train.optimizer, [c.__name__ for c in classes.values()])
                        or f"Known: {', '.join(sorted(c.__name__ for c in classes.values()))}.")
    accepted = set(inspect.signature(cls.__init__).parameters)
    for key in train.optimizer_args:
        if key not in accepted:
            raise doc.error(("train", "optimizer", key), f"{cls.__name__} has no argument `{key}`.",
                            hint=suggest(key, sorted(accepted - {"self", "kwargs"})))
