"""load_config(path, overrides) -> a fully validated ModelConfig, or a ConfigError that points at the line."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Callable

from cnnzoo.config.data_options import anchored
from cnnzoo.config.expand import parse_model
from cnnzoo.config.finetune import check_patterns, parse_freeze, parse_init_from
from cnnzoo.config.from_data import fill_from_data, needs_data
from cnnzoo.config.sections import parse_data, parse_input, parse_train
from cnnzoo.config.source import Document, load_document, parse_text
from cnnzoo.config.spec import BlockNode, BranchNode, InputSpec, LayerNode, ModelConfig, Node, TrainSpec
from cnnzoo.errors import quote, shown, suggest

TOP_LEVEL_KEYS = ("name", "description", "input", "model", "data", "train")
RUN_NAME = re.compile(r"[^\W_][\w.-]{0,63}")  # names a folder: never hidden (.x), dash-led (-rf) or ..

__all__ = ["load_config", "config_from_document", "parse_text", "ModelConfig", "Node", "LayerNode",
           "BranchNode", "BlockNode", "InputSpec", "TrainSpec"]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                check_names: bool = True, data_dir: Path | Callable[[], Path | None] | None = None) -> ModelConfig:
    """``check_names=False`` for a run folder's saved config.yaml: read as it was trained, even if its
    loss, metric or monitor names predate the checks (config/compile_names.py). `input.shape: auto` and
    the output layer's `units: auto` are read from the dataset, found in `data_dir` (a folder, or a function
    giving it, called only then; else where $CNNZOO_DATA_DIR says): config/from_data.py."""
    doc = load_document(Path(path), overrides)
    if needs_data(doc):
        from cnnzoo.data import resolve_data_dir

        folder = data_dir() if callable(data_dir) else data_dir
        doc = fill_from_data(doc, folder or resolve_data_dir(None))
    return config_from_document(doc, check_names=check_names)


def config_from_document(doc: Document, check_names: bool = True) -> ModelConfig:
    resolved = copy.deepcopy(doc.data)
    for key in doc.data:
        if key not in TOP_LEVEL_KEYS:
            raise doc.error((key,), f"unknown top-level key `{shown(key)}` (allowed: {', '.join(TOP_LEVEL_KEYS)}).",
                            hint=suggest(str(key), list(TOP_LEVEL_KEYS)))
    name = doc.data.get("name") or Path(doc.file).stem
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise doc.error(("name",), f"`name` must be a short identifier (letters, digits, -, _, .; starting with a "
                                   f"letter or digit; at most 64 characters), received {quote(name)}.",
                        hint="It names the run folder, e.g. `name: lenet`.")
    description = doc.data.get("description") or ""
    if not isinstance(description, str):
        raise doc.error(("description",), "`description` must be text.")
    train = dataclasses.replace(parse_train(doc, check_names), freeze=parse_freeze(doc))
    input_spec, layers, init_from = parse_input(doc), parse_model(doc), parse_init_from(doc)
    check_patterns(doc, layers, init_from, train.freeze)
    return ModelConfig(name=name, description=description, input=input_spec, layers=layers,
                       data=anchored(parse_data(doc), doc.file, resolved), train=train, file=doc.file, resolved=resolved, init_from=init_from)
