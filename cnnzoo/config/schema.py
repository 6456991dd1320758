"""`cnnzoo schema`: a JSON Schema (draft-07) of the config format, for yaml-language-server / VS Code.

Generated from the same registries the validator uses: every usable `keras.layers` class with the
arguments of its real constructor (types where cnnzoo checks them), and the sections' keys with their
types, bounds, defaults and descriptions as config/keys.py declares them.
The schema is a typing aid for editors; `cnnzoo summary` remains the full check (shapes, block
parameters, exactly one layer per entry). One convention the schema adds: a name in a layer list that
starts with a lowercase letter is taken for a block (Keras layer names are capitalised).
"""

from __future__ import annotations

import inspect
from typing import Any

from cnnzoo.config import keys
from cnnzoo.config.expand import BLOCK_KEYS, MAX_REPEAT
from cnnzoo.config.keys import mapping
from cnnzoo.layers import registry

DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_FILE = "cnnzoo.schema.json"  # shipped next to the configs, which name it on their first line
SCHEMA_LINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"
BLOCK_OR_PARAM = r"^([a-z_][A-Za-z0-9_]*|\$[A-Za-z_][A-Za-z0-9_]*)$"
PARAM = {"type": "string", "pattern": r"^\$([A-Za-z_][A-Za-z0-9_]*|\{.+\})$",
         "description": "a block parameter ($name), inside model.blocks"}
ENTRY_KEYS = ("repeat", "name", "branches", "merge", "when", "residual", "trainable")


def build_schema() -> dict[str, Any]:
    """The whole schema as a JSON-ready dict."""
    layer_names = sorted(registry.keras_layer_classes())
    definitions = {f"layer.{name}": _layer_args(cls) for name, cls in sorted(registry.keras_layer_classes().items())
                   if name not in registry.MERGE_LAYERS}
    definitions.update(entry=_entry(sorted(set(layer_names) - set(registry.MERGE_LAYERS))),
                       layers={"type": "array", "items": {"$ref": "#/definitions/entry"}},
                       param=PARAM)
    return {
        "$schema": DRAFT,
        "title": "cnnzoo config",
        "description": "A CNN described layer by layer, its data and its training (cnnzoo).",
        "type": "object",
        "additionalProperties": False,
        # a config that extends a `base:` may leave out what the base provides
        "if": {"required": ["base"]},
        "else": {"required": ["input", "model"], "properties": {
            "input": {"required": ["shape"]}, "model": {"required": ["layers"]}, "data": {"required": ["dataset"]}}},
        "properties": {
            "base": {"type": "string", "description": "a config file this one extends (path relative to this file)"},
            "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]*$", "description": "names the run folder"},
            "description": {"type": "string"},
            "input": _section(keys.INPUT, "the model's input"), "model": _model(),
            "data": _section(keys.DATA, "the dataset and how it is split, scaled and augmented"),
            "train": _section(keys.TRAIN, "how the model is trained"),
        },
        "definitions": definitions,
    }


def _section(declared: tuple[keys.Key, ...], description: str | None = None) -> dict:
    """A section's schema, generated from the key declarations the validator checks against."""
    return mapping({key.name: key.json_schema() for key in declared}, description=description)


def _model() -> dict:
    kinds = {"params": {"type": ["array", "object"]}, "layers": {"$ref": "#/definitions/layers"},
             "description": {"type": "string"}}
    block = mapping({key: kinds[key] for key in BLOCK_KEYS}, required=["layers"])
    blocks = {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
              "additionalProperties": block, "description": "reusable groups of entries, used like a layer"}
    patterns = {"type": "array", "items": {"type": "string"}}
    init_from = {"anyOf": [{"type": "string"}, mapping({"path": {"type": "string"}, "layers": patterns,
                                                        "skip_mismatch": {"type": "boolean"}}, required=["path"])],
                 "description": "a run folder, .keras or .weights.h5 file whose weights are copied by layer name"}
    return mapping({"layers": {"$ref": "#/definitions/layers", "minItems": 1}, "blocks": blocks,
                    "init_from": init_from})


def _entry(layer_names: list[str]) -> dict:
    """A list item: a bare name (`Flatten`, a block), or a mapping with one layer/block plus `repeat`/`name`,
    or a `branches` group."""
    repeat = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_REPEAT}, {"$ref": "#/definitions/param"}]}
    branches = {"type": "array", "minItems": 2, "items": {"$ref": "#/definitions/layers"}}
    properties = {name: {"$ref": f"#/definitions/layer.{name}"} for name in layer_names}
    param = {"$ref": "#/definitions/param"}
    properties.update(repeat=repeat, name={"type": "string"}, branches=branches,
                      merge={"enum": list(registry.MERGE_MODES)},
                      when={"anyOf": [{"type": "boolean"}, param]},
                      residual={"anyOf": [{"enum": [True, False, "auto"]}, param]},
                      trainable={"type": "boolean"},
                      Application={"type": "object", "required": ["name"],
                                   "description": "a keras.applications model as one entry"})
    mapping = {"type": "object", "minProperties": 1, "properties": properties,
               "propertyNames": {"anyOf": [{"enum": [*layer_names, *ENTRY_KEYS, "Application"]},
                                           {"pattern": BLOCK_OR_PARAM}]},
               "additionalProperties": {"type": ["object", "null"], "description": "a block and its parameters"}}
    bare = {"anyOf": [{"enum": layer_names}, {"type": "string", "pattern": BLOCK_OR_PARAM}]}
    return {"anyOf": [bare, mapping]}


def _layer_args(cls: type) -> dict:
    signature = registry.layer_signature(cls)
    properties = {name: _arg(name, param) for name, param in signature.items()}
    required = [n for n, p in signature.items() if p.default is inspect.Parameter.empty]
    schema = {"type": ["object", "null"], "properties": properties, "additionalProperties": False,
              "description": f"keras.layers.{cls.__name__}: {_first_line(cls.__doc__)}"}
    if required:
        schema["required"] = required
    return schema


_TYPES = {"bool": {"type": "boolean"}, "int": {"type": "integer"}, "number": {"type": "number"},
          "ints": {"anyOf": [{"type": "integer"}, {"type": "array", "minItems": 1, "items": {"type": "integer"}}]}}


def _arg(name: str, param: inspect.Parameter) -> dict:
    if name in registry.NESTED_LAYER_ARGS:
        return {"$ref": "#/definitions/entry", "description": "a Keras layer entry"}
    expected = registry.expected_type(param)
    default = param.default
    described = {} if default is inspect.Parameter.empty else {"description": f"default: {default!r}"}
    if expected is None:
        return described
    allowed = [_TYPES[expected], {"$ref": "#/definitions/param"}]
    if name == "units":  # config/from_data.py: in the last layer, the dataset's number of classes
        allowed.append({"const": "auto"})
    if default is None:
        allowed.append({"type": "null"})
    return {"anyOf": allowed, **described}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ").strip()[:300]


def schema_text() -> str:
    """The schema as the file `cnnzoo schema` writes (stable key order, so regenerating it changes nothing)."""
    import json

    return json.dumps(build_schema(), indent=1, sort_keys=True) + "\n"
