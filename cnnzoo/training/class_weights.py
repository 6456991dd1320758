"""`train.class_weight`: balanced (n_samples / (n_classes * count)) or a mapping of class name or index
to weight, resolved against the dataset's class names into the {index: weight} Keras' fit takes."""

from __future__ import annotations

import numpy as np

from cnnzoo.config.data_options import ClassWeightSpec
from cnnzoo.errors import ConfigError, suggest


def resolve_class_weight(spec: ClassWeightSpec, class_names: list[str], y_train: np.ndarray,
                         task: str) -> dict[int, float]:
    """{class index: weight} for every class (unnamed classes weigh 1.0)."""
    if task != "classification" or not class_names or np.asarray(y_train).ndim > 1:
        file, line = (spec.entries[0][2], spec.entries[0][3]) if spec.entries else (None, None)
        raise ConfigError("class weights need single-label classification (integer class targets); this run is "
                          f"{'multi-label' if task == 'classification' else task}.", file=file, line=line,
                          path="train.class_weight", hint="Remove `train.class_weight`.")
    if spec.mode == "balanced":
        counts = np.bincount(np.asarray(y_train, np.int64), minlength=len(class_names))
        return {k: float(len(y_train) / (len(class_names) * c)) if c else 1.0 for k, c in enumerate(counts)}
    weights = {k: 1.0 for k in range(len(class_names))}
    for key, weight, file, line in spec.entries:
        weights[_index(key, class_names, file, line)] = weight
    return weights


def _index(key, class_names: list[str], file, line) -> int:
    if str(key) in class_names:
        return class_names.index(str(key))
    if isinstance(key, int) and 0 <= key < len(class_names):
        return key
    shown = ", ".join(class_names[:20]) + (", ..." if len(class_names) > 20 else "")
    raise ConfigError(f"class_weight names the class {key!r}, which the dataset does not have (classes: {shown}; "
                      f"or an index 0..{len(class_names) - 1}).", file=file, line=line,
                      path=f"train.class_weight.{key}", hint=suggest(str(key), class_names))


def recorded(weights: dict[int, float] | None, class_names: list[str]) -> dict[str, float] | None:
    """The weights by class name, as metrics.json records them."""
    return None if weights is None else {class_names[k]: round(w, 6) for k, w in weights.items()}


def fit_class_weight(config, splits, plan) -> dict[int, float] | None:
    """The {index: weight} for Keras' fit of `train.class_weight`, or None when it is not set."""
    spec = config.train.class_weight
    return None if spec is None else resolve_class_weight(spec, splits.class_names, splits.y_train, plan.task)
