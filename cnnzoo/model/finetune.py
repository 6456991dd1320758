"""Starting from trained weights: `train.freeze` on a built model, and `model.init_from` copying weights
layer by layer by name, with a table of what was loaded, what is new and what was skipped.

A run folder or a `.keras` file is loaded as a model (Keras' safe mode), so its layers keep their
names. A `.weights.h5` file (Keras' `save_weights`) stores no layer names, only groups numbered per
class in layer order (`conv2d`, `conv2d_1`, `dense`, ...), so its layers are matched by that rule.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.atomic import atomic_write_json
from cnnzoo.config.spec import InitSpec
from cnnzoo.errors import ConfigError
from cnnzoo.runs.folder import RunFolder, check_weights_fit, load_checkpoint

LOADED, NEW, SKIPPED = "loaded", "new", "skipped"


def freeze_layers(model: Any, patterns: tuple[str, ...]) -> list[str]:
    """Make every layer whose name matches a pattern non-trainable; the names frozen."""
    frozen = [layer.name for layer in model.layers if any(fnmatchcase(layer.name, p) for p in patterns)]
    for name in frozen:
        model.get_layer(name).trainable = False
    return frozen


@dataclass
class InitRow:
    layer: str
    status: str
    detail: str = ""


def _error(spec: InitSpec, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, file=spec.file, line=spec.line, path="model.init_from", hint=hint)


def resolve_source(spec: InitSpec) -> Path:
    """The file to read: a run folder's best.keras (else last.keras), a .keras or .weights.h5 file; a glob
    pattern picks its last match in sorted order (run folders sort by their UTC timestamp)."""
    matches = sorted(glob.glob(spec.path)) if set("*?[") & set(spec.path) else [spec.path]
    path = Path(matches[-1]) if matches else None
    if path is not None and path.is_dir():
        run = RunFolder(path)
        path = next((f for f in (run.best, run.last) if f.is_file()), None) or path
    if path is None or not path.is_file():
        raise _error(spec, f"{spec.path}: no such run folder, .keras or .weights.h5 file"
                           + (" (a run folder needs best.keras or last.keras)" if path and path.is_dir() else "") + ".",
                     hint="Train the source run first (e.g. `cnnzoo train configs/lenet.yaml`) or fix the path.")
    if not path.name.endswith((".keras", ".weights.h5")):
        raise _error(spec, f"{path}: init_from reads a run folder, a .keras or a .weights.h5 file.")
    return path


def source_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> weight arrays of the source."""
    if path.name.endswith(".weights.h5"):
        check_weights_fit(path)
        return _h5_weights(path)
    model = load_checkpoint(path)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _h5_weights(path: Path) -> dict[str, list[np.ndarray]]:
    import h5py

    try:
        with h5py.File(path, "r") as store:
            groups = store.get("layers") or {}
            return {name: [np.asarray(group["vars"][k]) for k in sorted(group["vars"], key=int)]
                    for name, group in groups.items() if "vars" in group and len(group["vars"])}
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as a Keras .weights.h5 file ({exc}).") from None


def h5_group_names(model: Any) -> dict[str, str]:
    """Layer name -> the group Keras' save_weights gives it: snake-case class name, numbered per class."""
    from keras.src.utils.naming import to_snake_case

    used: dict[str, int] = {}
    groups = {}
    for layer in model.layers:
        base = to_snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        groups[layer.name] = base if used[base] == 0 else f"{base}_{used[base]}"
    return groups


def init_weights(model: Any, spec: InitSpec) -> list[InitRow]:
    """Copy weights into `model` by layer name; one row per layer with weights."""
    path = resolve_source(spec)
    weights = source_weights(path)
    keys = h5_group_names(model) if path.name.endswith(".weights.h5") else {}
    rows = []
    for layer in (layer for layer in model.layers if layer.weights):
        if spec.layers and not any(fnmatchcase(layer.name, p) for p in spec.layers):
            rows.append(InitRow(layer.name, NEW, "not selected by init_from.layers"))
            continue
        rows.append(_copy(layer, weights.get(keys.get(layer.name, layer.name)), spec, path))
    return rows


def _copy(layer: Any, source: list[np.ndarray] | None, spec: InitSpec, path: Path) -> InitRow:
    if source is None:
        return InitRow(layer.name, NEW, f"not in {path.name}")
    want = [tuple(w.shape) for w in layer.get_weights()]
    have = [tuple(w.shape) for w in source]
    if want != have:
        detail = f"shapes {_shapes(have)} in {path.name}, {_shapes(want)} here"
        if not spec.skip_mismatch:
            raise _error(spec, f"layer `{layer.name}`: {detail}.",
                         hint="Set `skip_mismatch: true` under init_from to keep this layer's new weights "
                              "(e.g. a head with another number of classes), or leave it out of `layers:`.")
        return InitRow(layer.name, SKIPPED, detail)
    layer.set_weights(source)
    return InitRow(layer.name, LOADED, _shapes(have))


def _shapes(shapes: list[tuple]) -> str:
    return " ".join("x".join(map(str, s)) for s in shapes)


def render_init(rows: list[InitRow], source: str):
    from rich.table import Table

    counts = {status: sum(r.status == status for r in rows) for status in (LOADED, NEW, SKIPPED)}
    table = Table(title=f"init_from {source}: {counts[LOADED]} loaded, {counts[NEW]} new, {counts[SKIPPED]} skipped",
                  title_justify="left")
    for header in ("layer", "weights", "detail"):
        table.add_column(header)
    style = {LOADED: "green", NEW: "yellow", SKIPPED: "red"}
    for row in rows:
        table.add_row(row.layer, f"[{style[row.status]}]{row.status}[/]", row.detail)
    return table


def report_init(rows: list[InitRow], spec: InitSpec, path: Path, console) -> None:
    """Print the table and keep it in the run folder as JSON."""
    console.print(render_init(rows, spec.path))
    atomic_write_json(path, {"source": spec.path, "layers": [vars(row) for row in rows]})
