"""Writing a .keras checkpoint every epoch without Keras re-walking the model each time (see
CheckpointWriter); the files are exactly those `model.save` writes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import keras

from cnnzoo.atomic import temp_path


class CheckpointWriter:
    """Writes the .keras archive `model.save` writes, re-serialising only what changes between epochs.

    Keras walks the model's object graph on every save (about 0.1 s for a 266k-parameter FCN, more than a
    tiny dataset's epoch). The first save here is Keras' own; it also learns where each variable's values
    lie in the archive's weights file (one more save with every variable set to its own index, then the
    values restored), and keeps that layout only if refilling it reproduces Keras' weights file byte for
    byte. Later saves copy the layout, write the current values into it and the model's config afresh.
    Under a distribution strategy, past MAX_LAYOUT_BYTES, with assets, when a variable appears or when
    anything fails, every save is Keras' own. One writer may serve both checkpoints of a model."""

    def __init__(self):
        self.layout: _WeightsLayout | None = None
        self.learned = False

    def save(self, model, path: Path) -> None:
        if self.layout is not None and self.layout.fits(model):
            try:
                _write_archive(path, model, self.layout.filled())
                return
            except OSError:
                raise
            except Exception:  # a Keras that serialises otherwise: its own save from now on
                self.layout = None
        model.save(path)
        if not self.learned:
            self.learned = True
            try:
                self.layout = _WeightsLayout.learn(model, path)
            except Exception:  # no layout (a full disk, an unexpected file): Keras' own saves
                self.layout = None


_ARCHIVE = ("metadata.json", "config.json", "model.weights.h5")  # model.save's members, in its order
MAX_LAYOUT_BYTES = 64 << 20  # the layout is kept in memory: only models whose epochs are short need it


class _WeightsLayout:
    """A weights file of a model and, for each variable, where its bytes lie in it."""

    def __init__(self, template: bytes, slots: list[tuple[int, int, int]], variables: list):
        import tensorflow as tf

        # the bytes of a weights file whose every variable holds its index + 1; where each variable lies in it
        self.template, self.slots, self.variables = template, slots, variables
        # every value in one call: reading the variables one by one costs 20 times more
        self.read = tf.function(lambda: [tf.identity(v.value) for v in variables])

    @classmethod
    def learn(cls, model, saved: Path) -> "_WeightsLayout | None":
        import tensorflow as tf

        variables = _saved_variables(model)
        if tf.distribute.has_strategy() or _members(saved) != _ARCHIVE or saved.stat().st_size > MAX_LAYOUT_BYTES:
            return None
        values = [keras.ops.convert_to_numpy(v) for v in variables]
        if any(_marker(value, index, ()).item() != index + 1 for index, value in enumerate(values)):
            return None  # an index its dtype cannot hold exactly (float16, bool)
        marked = temp_path(saved)
        try:
            for index, variable in enumerate(variables):
                variable.assign(_marker(values[index], index))
            model.save(marked)
            with zipfile.ZipFile(marked) as archive:
                template = archive.read(_ARCHIVE[2])
        finally:
            for variable, value in zip(variables, values):
                variable.assign(value)
            marked.unlink(missing_ok=True)
        slots = _slots(template, values)
        layout = cls(template, slots, variables) if slots is not None else None
        with zipfile.ZipFile(saved) as archive:
            return layout if layout is not None and layout.filled() == archive.read(_ARCHIVE[2]) else None

    def fits(self, model) -> bool:
        current = _saved_variables(model)
        return len(current) == len(self.variables) and all(a is b for a, b in zip(current, self.variables))

    def filled(self) -> bytearray:
        import numpy as np

        buffer = bytearray(self.template)
        view = memoryview(buffer)
        values = self.read()
        for offset, size, index in self.slots:
            value = np.ascontiguousarray(values[index].numpy())
            view[offset:offset + size] = value.reshape(-1).view(np.uint8)
        return buffer


def _saved_variables(model) -> list:
    """The variables a .keras file holds values of: the layers' and the optimizer's."""
    optimizer = getattr(model, "optimizer", None)
    found = [*model.variables, *(optimizer.variables if optimizer is not None else [])]
    return list({id(v): v for v in found}.values())


def _marker(value, index: int, shape=None):
    import numpy as np

    return np.full(value.shape if shape is None else shape, index + 1, dtype=value.dtype)


def _slots(template: bytes, values: list) -> list[tuple[int, int, int]] | None:
    """(offset, size, variable index) of each dataset of the marked weights file; None when one is not a
    contiguous copy of exactly one variable."""
    import h5py
    import numpy as np

    slots, bad = [], []

    def visit(name, item):
        if not isinstance(item, h5py.Dataset) or item.size == 0:
            return
        data = np.asarray(item[()])
        index = int(data.reshape(-1)[0]) - 1
        value = values[index] if 0 <= index < len(values) else None
        offset = item.id.get_offset()
        if (value is None or data.dtype != value.dtype or data.shape != value.shape or offset is None
                or item.id.get_storage_size() != value.nbytes or not np.all(data == _marker(value, index))):
            bad.append(name)
        else:
            slots.append((offset, value.nbytes, index))

    with h5py.File(io.BytesIO(template), "r") as store:
        store.visititems(visit)
    return None if bad else slots


def _members(path: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(path) as archive:
        return tuple(archive.namelist())


def _write_archive(path: Path, model, weights: bytearray) -> None:
    from keras.src.saving import saving_lib  # the config and metadata exactly as model.save writes them

    config_json, metadata_json = saving_lib._serialize_model_as_json(model)
    with open(path, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for name, data in zip(_ARCHIVE, (metadata_json.encode(), config_json.encode(), weights)):
            archive.writestr(name, data)
