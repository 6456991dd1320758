"""Reading YAML config files: safe parsing, line origins, `base:` inheritance, `--set` overrides.

This is the only module that reads YAML. It produces a `Document`: plain Python data plus,
for every key path, the file and line it came from, so later errors can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.errors import ConfigError, quote, shown

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_BASE_DEPTH = 16
SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "configs"

PathKey = tuple  # a key path: ("model", "layers", 3, "Conv2D", "filters")

_PLAIN_TAGS = {
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3 as a number (YAML 1.1 needs 1.0e-3; YAML 1.2 and users don't)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def format_path(path: PathKey) -> str:
    """("model", "layers", 3, "filters") -> "model.layers[3].filters"."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{key}" if text else str(key)
    return text


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None = None


@dataclass
class Document:
    """Config data plus where each key path came from."""

    data: Any
    file: str
    origins: dict[PathKey, Origin] = field(default_factory=dict)

    def origin(self, path: PathKey) -> Origin:
        """The origin of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.origins.get(tuple(path[:end]))
            if found is not None:
                return found
        return Origin(self.file)

    def error(self, path: PathKey, message: str, hint: str | None = None) -> ConfigError:
        origin = self.origin(path)
        return ConfigError(message, file=origin.file, line=origin.line,
                           path=format_path(path) or None, hint=hint)


def load_document(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> Document:
    """Load a config file with its `base:` chain merged and `--set` overrides applied."""
    path = Path(path)
    doc = _load_with_bases(path, chain=(), roots=_base_roots(path))
    for override in overrides:
        _apply_override(doc, override)
    return doc


def _base_roots(top: Path) -> tuple[Path, ...]:
    """Where `base:` files may live: under the folder of the config given, or the shipped configs."""
    try:
        return top.parent.resolve(), SHIPPED_CONFIGS
    except (OSError, ValueError):
        return (SHIPPED_CONFIGS,)


def _load_with_bases(path: Path, chain: tuple[Path, ...], roots: tuple[Path, ...]) -> Document:
    doc = _parse_file(path)
    if not isinstance(doc.data, dict) or "base" not in doc.data:
        return doc
    base_ref = doc.data.pop("base")
    base_path = _base_path(doc, path, base_ref, roots)
    if base_path in chain or base_path == path.resolve():
        raise doc.error(("base",), f"`base: {shown(base_ref)}` makes a cycle of config files.",
                        hint="A config cannot inherit from itself, directly or indirectly.")
    if len(chain) >= MAX_BASE_DEPTH:
        raise doc.error(("base",), f"more than {MAX_BASE_DEPTH} levels of `base:`.")
    if not _is_file(base_path):
        raise doc.error(("base",), f"base config {quote(base_ref)} not found (looked at {base_path}).",
                        hint="Paths in `base:` are relative to the file that names them.")
    base = _load_with_bases(base_path, chain + (path.resolve(),), roots)
    return _merge_documents(base, doc)


def _base_path(doc: Document, path: Path, base_ref: Any, roots: tuple[Path, ...]) -> Path:
    """The resolved `base:` file, which must be a relative path inside one of `roots`."""
    if not isinstance(base_ref, str) or not base_ref or "\0" in base_ref or len(base_ref) > 1000:
        raise doc.error(("base",), f"`base` must be a file name, received {quote(base_ref)}.")
    if Path(base_ref).is_absolute() or base_ref.startswith("~"):
        raise doc.error(("base",), f"`base` must be a path relative to this file, received {quote(base_ref)}.",
                        hint="A config may only inherit from files in its own folder tree.")
    try:
        resolved = (path.parent / base_ref).resolve()
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise doc.error(("base",), f"`base: {shown(base_ref)}` cannot be resolved: {exc.__class__.__name__}.") from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise doc.error(("base",), f"`base: {shown(base_ref)}` points outside the folder of the config "
                                   f"given ({roots[0]}) and the shipped configs.",
                        hint="Keep base files in the same folder tree as the config you run (symbolic "
                             "links are followed before this check).")
    return resolved


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a file name longer than the file system allows
        return False


def _merge_documents(base: Document, child: Document) -> Document:
    """Mappings merge key by key; lists and scalars of the child replace the base's."""
    origins = dict(base.origins)

    def merge(base_value: Any, child_value: Any, path: PathKey) -> Any:
        if isinstance(base_value, dict) and isinstance(child_value, dict):
            merged = dict(base_value)
            for key, value in child_value.items():
                merged[key] = merge(base_value.get(key), value, path + (key,))
            if path in child.origins:
                origins[path] = child.origins[path]
            return merged
        _drop_origins(origins, path)
        origins.update({k: v for k, v in child.origins.items() if k[:len(path)] == path})
        return child_value

    data = merge(base.data, child.data, ())
    return Document(data, child.file, origins)


def _drop_origins(origins: dict[PathKey, Origin], prefix: PathKey) -> None:
    for key in [k for k in origins if k[:len(prefix)] == prefix]:
        del origins[key]


def _parse_file(path: Path) -> Document:
    name = str(path)
    if not path.exists():
        raise ConfigError("config file not found.", file=name,
                          hint="Check the path. A shipped config is found by its bare name from any folder "
                               "(`cnnzoo train lenet`); `cnnzoo configs` lists them.")
    if not path.is_file():
        raise ConfigError("is a directory, not a config file.", file=name,
                          hint="Pass a .yaml file, e.g. configs/lenet.yaml.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"file is larger than {MAX_FILE_BYTES // 1000} kB; "
                          "a config this large is almost certainly not a config.", file=name)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text ({exc.reason} at byte {exc.start}).", file=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}.", file=name) from None
    return parse_text(text, name)


def parse_text(text: str, name: str) -> Document:
    """Parse YAML text safely into a Document (no tags beyond plain YAML, bounded size)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        started = exc.context_mark.line + 1 if exc.context and exc.context_mark else None
        context = f" ({exc.context} that starts on line {started})" if started and started != line else ""
        raise ConfigError(f"YAML syntax error: {exc.problem or exc.context}{context}.", file=name, line=line,
                          hint="Check indentation, colons and brackets on or just before that line.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}.", file=name) from None
    except RecursionError:
        raise _too_deep(name) from None
    if node is None:
        raise ConfigError("the file is empty.", file=name,
                          hint="A config needs at least `name`, `input` and `model.layers`.")
    doc = Document(None, name)
    try:
        doc.data = _NodeReader(doc).read(node, ())
    except RecursionError:
        raise _too_deep(name) from None
    if not isinstance(doc.data, dict):
        raise doc.error((), f"the top level must be a mapping of sections, received a {type(doc.data).__name__}.",
                        hint="Start the file with keys such as `name:`, `input:` and `model:`.")
    return doc


def _too_deep(name: str) -> ConfigError:
    return ConfigError("the YAML is nested too deeply to be a config (hundreds of levels of lists or mappings).",
                       file=name, hint="Check for unbalanced brackets; a config needs only a few levels.")


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _merged_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many key/value pairs a mapping has once its `<<` merges are flattened (duplicates counted,
    as PyYAML keeps them), computed without flattening."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 0  # a merge cycle adds nothing; PyYAML rejects it later
    total = 0
    for key, value in node.value:
        if key.tag != _MERGE_TAG:
            total += 1
        elif isinstance(value, yaml.MappingNode):
            total += _merged_size(value, memo)
        elif isinstance(value, yaml.SequenceNode):
            total += sum(_merged_size(v, memo) for v in value.value if isinstance(v, yaml.MappingNode))
    memo[id(node)] = total
    return total


class _NodeReader:
    """Turns a composed YAML node tree into plain data, recording origins, with a node budget."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.constructor = _Loader("")
        self.visited = 0
        self.own_keys: dict[int, set[int]] = {}  # per mapping node: its key nodes before `<<` merging

    def read(self, node: yaml.Node, path: PathKey) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self._error(node, path, f"the document expands to more than {MAX_NODES} values "
                              "(anchors and aliases nested too deep?).")
        self.doc.origins[path] = Origin(self.doc.file, node.start_mark.line + 1)
        if node.tag not in _PLAIN_TAGS:
            raise self._error(node, path, f"YAML tag {node.tag!r} is not allowed.",
                              hint="Config files are plain data; tags that construct objects are refused.")
        if isinstance(node, yaml.MappingNode):
            return self._read_mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise self._error(node, path, f"cannot read value {node.value!r}: {exc}.") from None

    def _read_mapping(self, node: yaml.MappingNode, path: PathKey) -> dict:
        own = self.own_keys.setdefault(id(node), {id(k) for k, _ in node.value if k.tag != _MERGE_TAG})
        if _merged_size(node, {}) > MAX_NODES - self.visited:  # before PyYAML copies the merged pairs
            raise self._error(node, path, f"`<<` merges expand this mapping past {MAX_NODES} values.",
                              hint="Merge keys that merge mappings that merge others grow exponentially; "
                                   "write the values out or merge fewer levels.")
        try:
            self.constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise self._error(node, path, f"bad `<<` merge: {exc}.") from None
        result: dict = {}
        written: set = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise self._error(key_node, path, "mapping keys must be plain names.")
            key = self.constructor.construct_object(key_node)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)
            if id(key_node) in own:  # keys merged in by `<<` may be overridden; written ones only once
                if key in written:
                    raise self._error(key_node, path + (key,), f"key {key!r} appears twice.",
                                      hint="Remove one of the two; YAML would silently keep the last.")
                written.add(key)
            result[key] = self.read(value_node, path + (key,))
            # a key's line is where the key is written, not where its (block) value starts below it
            self.doc.origins[path + (key,)] = Origin(self.doc.file, key_node.start_mark.line + 1)
        return result

    def _error(self, node: yaml.Node, path: PathKey, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.doc.file, line=node.start_mark.line + 1,
                           path=format_path(path) or None, hint=hint)


def parse_override(text: str) -> tuple[PathKey, Any]:
    """"model.layers[3].Conv2D.filters=32" -> (("model","layers",3,"Conv2D","filters"), 32)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} has no '='.", file="--set",
                          hint="Write --set dotted.path=value, e.g. --set train.epochs=2.")
    key_text, value_text = text.split("=", 1)
    path = _parse_key_path(key_text.strip(), text)
    value_doc = parse_text(f"value: {value_text}" if value_text.strip() else "value: null", f"--set {text}")
    return path, value_doc.data["value"]


def _parse_key_path(key_text: str, whole: str) -> PathKey:
    parts: list = []
    for segment in key_text.replace("[", ".").replace("]", "").split("."):
        if not segment:
            raise ConfigError(f"--set {whole!r}: empty part in key path {key_text!r}.", file="--set",
                              hint="Write --set a.b.c=value or --set model.layers[2].Dense.units=64.")
        parts.append(int(segment) if re.fullmatch(r"-?[0-9]+", segment) else segment)
    return tuple(parts)


def _apply_override(doc: Document, text: str) -> None:
    path, value = parse_override(text)
    target = doc.data
    for depth, key in enumerate(path[:-1]):
        prefix = format_path(path[:depth + 1])
        if isinstance(target, dict):
            if key not in target:  # made by this override: an error about it names the override
                doc.origins[path[:depth + 1]] = Origin(f"--set {text}")
            target = target.setdefault(key, {})
        elif isinstance(target, list) and isinstance(key, int) and -len(target) <= key < len(target):
            target = target[key]
        else:
            raise ConfigError(f"--set {text!r}: {prefix} does not exist in the config.", file="--set",
                              hint="Use an index within the list, e.g. model.layers[0].")
    last = path[-1]
    if isinstance(target, dict):
        target[last] = value
    elif isinstance(target, list) and isinstance(last, int) and -len(target) <= last < len(target):
        target[last] = value
    else:
        raise ConfigError(f"--set {text!r}: cannot set {format_path(path)} (parent is not a mapping).",
                          file="--set")
    _drop_origins(doc.origins, path)
    doc.origins[path] = Origin(f"--set {text}")
