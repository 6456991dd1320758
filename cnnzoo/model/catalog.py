"""The shipped configs as `cnnzoo configs` lists them: name, description, dataset and parameter count
(the model is built to count, so this lives with the model; cached by config content and Keras version)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnzoo.atomic import atomic_write_json
from cnnzoo.config import config_from_document
from cnnzoo.config.from_data import needs_data
from cnnzoo.config.shipped import shipped_dir, shipped_names
from cnnzoo.config.source import load_document
from cnnzoo.data.locate import array_cache_dir
from cnnzoo.errors import CnnzooError
from cnnzoo.model.builder import build_model


@dataclass(frozen=True)
class ShippedInfo:
    name: str
    description: str
    dataset: str
    params: int | None
    path: Path


def describe_shipped(on_build=None) -> list[ShippedInfo]:
    """One entry per shipped config. Parameter counts need the model built (seconds for VGG16), so they
    are cached by config content and Keras version in the cnnzoo cache folder; ``on_build(name)``
    is called before each model that has to be built."""
    import hashlib

    import keras
    import yaml

    cache = _ParamCache()
    infos = []
    for name in shipped_names():
        path = shipped_dir() / f"{name}.yaml"
        doc = load_document(path)
        key = hashlib.sha256((yaml.safe_dump(doc.data) + keras.__version__).encode()).hexdigest()
        if needs_data(doc):  # shape and classes from the dataset: counted at the config's own dataset
            config = _from_data(path)
        else:
            config = config_from_document(doc)
        params = cache.get(name, key)
        if params is None:
            if on_build is not None:
                on_build(name)
            params = cache.put(name, key, _count_params(config))
        data = config.data
        dataset = "/".join(filter(None, (data.dataset, data.name))) if data else ""
        infos.append(ShippedInfo(name, config.description.strip().splitlines()[0] if config.description else "",
                                 dataset, params, path))
    return infos


def _from_data(path):
    """The config with `auto` filled from its dataset, or, where the dataset is not here, ECG200's shape
    and classes (the recipes' default), so the listing never needs the data."""
    from cnnzoo.config import load_config
    from cnnzoo.errors import CnnzooError

    try:
        return load_config(path)
    except CnnzooError:
        return load_config(path, ["input.shape=[96,1]", "model.layers[-1].Dense.units=2"])


def _count_params(config) -> int:
    import keras

    with keras.StatelessScope():  # shapes only: Keras defers initialising the weights
        return build_model(config).model.count_params()


class _ParamCache:
    """name -> (config hash, parameter count) in <cache>/shipped-params.json; a bad file is ignored."""

    def __init__(self):
        import json

        self.path = array_cache_dir(None) / "shipped-params.json"
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):
            self.entries = {}

    def get(self, name: str, key: str) -> int | None:
        entry = self.entries.get(name)
        return entry.get("params") if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, name: str, key: str, params: int) -> int:
        self.entries[name] = {"key": key, "params": params}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.entries)
        except (OSError, CnnzooError):  # a read-only cache folder only costs the next listing its speed
            pass
        return params
