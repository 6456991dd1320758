"""`cnnzoo eval`: metrics of a run's checkpoint on a split, per-class report and confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo import data as datasets
from cnnzoo.atomic import atomic_write_json
from cnnzoo.config import load_config
from cnnzoo.config.tasks import task_hint
from cnnzoo.data import standardize
from cnnzoo.errors import RunError
from cnnzoo.training.batchnorm_check import check_training_sample
from cnnzoo.evaluation.class_metrics import (averages, confusion_matrix, per_class_report, predictions_from_probs,
                                             top_k_accuracy, write_confusion_csv)
from cnnzoo.evaluation.task_reports import binary_auc, task_result
from cnnzoo.evaluation.tta import check_tta, predict_views
from cnnzoo.host_memory import out_of_memory
from cnnzoo.model.memory_guard import check_run_memory
from cnnzoo.runs.folder import RunFolder, load_checkpoint
from cnnzoo.runs.pictures import draw_mistakes
from cnnzoo.runs.plots import plot_confusion_matrix
from cnnzoo.data.stream_pipeline import stream_failures
from cnnzoo.data.streams import is_stream
from cnnzoo.terminal import plain
from cnnzoo.training.labels import plan_labels
from cnnzoo.training.setup import make_pipelines, require_data


def evaluate_run(run: RunFolder, *, checkpoint: str, split: str, data_dir: Path | None,
                 force: bool = False, tta: str = "none") -> dict[str, Any]:
    config = require_data(load_config(run.config, check_names=False))
    check_run_memory(config, what=f"evaluating {run.path}", force=force, data_dir=data_dir, inference=True)
    with out_of_memory(f"loading {checkpoint}.keras"):
        model = load_checkpoint(run.checkpoint(checkpoint))
    with out_of_memory("loading data"):
        splits = datasets.load_dataset(config.data, input_shape=config.input.shape, data_dir=data_dir,
                                       seed=config.train.seed, task=task_hint(config.train),
                                       standardization=standardize.recorded(run.standardize))
    plan = plan_labels(config, model, splits.num_classes, splits)
    check_tta(tta, config.input.shape, plan.task, plan.multi_label, run.path)
    pipes = make_pipelines(config, splits, plan)
    pipe, y_true = (pipes.test, splits.y_test) if split == "test" else (pipes.val, splits.y_val)
    if pipe is None:
        raise RunError(f"{run.path}: the {split} split of this run is empty; nothing to evaluate.")
    x_split = splits.x_test if split == "test" else splits.x_val
    with out_of_memory(f"evaluating on the {split} split"), stream_failures(splits):
        scores = {k: float(v) for k, v in model.evaluate(pipe, verbose=0, return_dict=True).items()}
        probs = predict_views(model, pipe, tta)
        check = check_training_sample(model, config, splits, plan)
    skipped = sorted(x_split.bad.skipped) if is_stream(x_split) else []
    if skipped:  # files skipped under data.bad_files: skip are not in probs
        kept = np.flatnonzero(x_split.kept())
        x_split, y_true = x_split[kept], np.asarray(y_true)[kept]
    warning = check.warning(f"{checkpoint}.keras") if check else None
    base = {"run": run.name, "checkpoint": checkpoint, "split": split, "samples": int(len(y_true)), "metrics": scores,
            **({"skipped_files": skipped} if skipped else {}), **({"batchnorm": check.to_json()} if check else {}),
            "warnings": [warning] if warning else []}
    if tta != "none":  # metrics come from the averaged probabilities; Keras' single-view ones are kept aside
        base |= {"tta": tta, "single_view": scores,
                 "metrics": {"accuracy": float(np.mean(predictions_from_probs(probs) == np.asarray(y_true)))}}
    special = task_result(run, plan, splits, np.asarray(y_true), probs, base)
    if special is not None:
        atomic_write_json(run.eval_json, special)
        return special
    y_pred = predictions_from_probs(probs)
    one_class = single_class_warning(np.asarray(y_true), y_pred, splits.class_names, split)
    base["warnings"] += [one_class] if one_class else []
    cm = confusion_matrix(y_true, y_pred, splits.num_classes)
    result = {
        **base, "averages": averages(cm),
        "per_class": per_class_report(cm, splits.class_names),
        "class_names": splits.class_names, "confusion_matrix": cm.tolist(),
    }
    auc = binary_auc(probs, np.asarray(y_true)) if splits.num_classes == 2 else None
    if auc is not None:  # None when the split holds one class only
        result["metrics"]["roc_auc"] = auc
    if splits.num_classes > 5:
        result["metrics"]["top_5_accuracy"] = top_k_accuracy(np.asarray(y_true), probs, 5)
    result["mistakes"] = write_mistakes(run, x_split, np.asarray(y_true), probs, splits.class_names)
    write_confusion_csv(cm, splits.class_names, run.confusion_csv)
    plot_confusion_matrix(cm, splits.class_names, run.confusion_png)
    atomic_write_json(run.eval_json, result)
    return result


MISTAKES_SHOWN = 24


def single_class_warning(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], split: str) -> str | None:
    """Said when every sample of a split holding several classes is predicted as one class."""
    if len(y_pred) < 2 or len(np.unique(y_true)) < 2 or len(np.unique(y_pred)) > 1:
        return None
    name = class_names[int(y_pred[0])] if int(y_pred[0]) < len(class_names) else str(int(y_pred[0]))
    return (f"the model predicts {name!r} for every one of the {len(y_pred)} samples of the {split} split, which "
            f"holds {len(np.unique(y_true))} classes: it has learned nothing it can use in inference mode.")


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, count: int = MISTAKES_SHOWN) -> list[tuple[int, int, float]]:
    """(index, predicted class, its probability) of misclassified samples, most confident first."""
    predicted = predictions_from_probs(probs)
    confidence = probs.max(axis=-1) if probs.shape[-1] > 1 else np.where(predicted == 1, probs[:, 0], 1 - probs[:, 0])
    wrong = np.flatnonzero(predicted != y_true)
    ranked = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    return [(int(i), int(predicted[i]), float(confidence[i])) for i in ranked]


def write_mistakes(run: RunFolder, x: np.ndarray, y_true: np.ndarray, probs: np.ndarray,
                   class_names: list[str]) -> list[dict]:
    """mistakes.png of the most confident mistakes; the same list for eval.json."""
    mistakes = confident_mistakes(y_true, probs)
    listed = [{"index": i, "true": class_names[int(y_true[i])], "predicted": class_names[p], "probability": conf}
              for i, p, conf in mistakes]
    draw_mistakes([(x[m["index"]], f"#{m['index']}: {m['predicted']} ({m['probability']:.2f})\ntrue {m['true']}")
                   for m in listed], run.mistakes_png)
    return listed


def render_eval(result: dict[str, Any]):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    views = f", {result['tta']} test-time augmentation" if result.get("tta") else ""
    table = Table(title=f"{plain(result['run'])}: {result['checkpoint']} checkpoint on {result['split']} "
                        f"({result['samples']} samples{views})", title_justify="left")
    for header in ("class", "precision", "recall", "f1", "support"):
        table.add_column(header, justify="left" if header == "class" else "right")
    for row in result.get("per_class", []):
        table.add_row(plain(row["name"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                      str(row["support"]))
    lines = ["  ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items())]
    if "single_view" in result:
        lines.append("single view: " + "  ".join(f"{k} {v:.4f}" for k, v in result["single_view"].items()))
    warnings = [Text(f"warning: {plain(w)}", style="yellow") for w in result.get("warnings", [])]
    return Group(table, Text("\n".join(lines)), *warnings)
