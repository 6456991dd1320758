"""Training curves and confusion matrices as PNGs; reads history CSVs, knows nothing about models."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
# run, class and layer names are data: `$...$` in one is text, never mathtext (a malformed one crashed the plot)
matplotlib.rcParams["text.parse_math"] = False

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from cnnzoo.atomic import atomic_save  # noqa: E402
from cnnzoo.errors import RunError  # noqa: E402
from cnnzoo.runs.folder import RunFolder, read_history  # noqa: E402
from cnnzoo.runs.record import RunRecord  # noqa: E402

NOT_METRICS = {"epoch", "learning_rate", "lr", "epoch_seconds"}
DEFAULT_METRICS = ("accuracy", "loss", "mae", "r2")  # those a history has are plotted
DPI = 120


def available_metrics(df) -> list[str]:
    """Train metric names in a history (``val_`` columns folded into their metric), in column order."""
    names = [c[4:] if c.startswith("val_") else c for c in map(str, df.columns)]
    return [n for n in dict.fromkeys(names) if n not in NOT_METRICS]


FIGURE_FORMATS = ("png", "svg", "pdf")


def save_figure(fig, out: Path) -> Path:
    """Write ``fig`` to ``out`` atomically (SVG or PDF by its suffix, else PNG), then close it."""
    out = Path(out)
    suffix = out.suffix.lower().lstrip(".")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(out, lambda tmp: fig.savefig(tmp, format=suffix if suffix in FIGURE_FORMATS else "png", dpi=DPI))
    except OSError as exc:
        raise RunError(f"{out}: cannot write the plot ({exc.strerror or exc}). "
                       f"Choose a writable location with --out.") from exc
    finally:
        plt.close(fig)
    return out


def _best_epoch(df, metrics_json: Path | None = None) -> int | None:
    """metrics.json ``best_epoch`` if present, else the epoch of min val_loss / max val_accuracy."""
    if metrics_json is not None and metrics_json.exists():
        try:
            best = RunRecord.read(metrics_json).best_epoch
        except RunError:
            best = None
        if best is not None:
            return int(best)
    for column, pick in (("val_loss", "idxmin"), ("val_accuracy", "idxmax")):
        if column in df and df[column].notna().any():
            return int(df.loc[getattr(df[column], pick)(), "epoch"])
    return None


def _mark_best(ax, df, column: str, epoch: int, color, label: str | None) -> None:
    """A dotted vertical line at ``epoch`` and an annotated marker on ``column`` there."""
    ax.axvline(epoch, color=color, linestyle=":", linewidth=1, alpha=0.8)
    rows = df[df["epoch"] == epoch]
    if rows.empty or column not in rows or np.isnan(rows[column].iloc[0]):
        return
    value = float(rows[column].iloc[0])
    ax.plot([epoch], [value], marker="*", markersize=12, color=color, zorder=5)
    text = f"best{f' ({label})' if label else ''}: epoch {epoch}\n{column} {value:.4g}"
    ax.annotate(text, (epoch, value), textcoords="offset points", xytext=(8, 8), fontsize=8, color=color,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "alpha": 0.9}, zorder=6)


def plot_metric(histories: dict, metric: str, out: Path, best_epochs: dict[str, int] | None = None) -> Path:
    """Train (solid) and validation (dashed) curves of ``metric`` for each named history, one colour per run."""
    present = {name: df for name, df in histories.items() if metric in df or f"val_{metric}" in df}
    if not present:
        known = sorted({m for df in histories.values() for m in available_metrics(df)})
        raise RunError(f"metric {metric!r} is in none of the histories ({', '.join(histories) or 'none given'}). "
                       f"Available metrics: {', '.join(known) or 'none'}.")
    best_epochs = best_epochs or {}
    single = len(present) == 1
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for i, (name, df) in enumerate(present.items()):
        color = f"C{i % 10}"
        marker = "o" if len(df) < 2 else None
        for column, style, part in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
            if column in df:
                ax.plot(df["epoch"], df[column], style, color=color, marker=marker,
                        label=part if single else f"{name} {part}")
        if best_epochs.get(name) is not None:
            column = f"val_{metric}" if f"val_{metric}" in df else metric
            _mark_best(ax, df, column, int(best_epochs[name]), color, None if single else name)
    title = metric.replace("_", " ")
    ax.set_title(f"{next(iter(present))}: {title}" if single else title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return save_figure(fig, out)


def plot_run(run: RunFolder, metrics=DEFAULT_METRICS) -> list[Path]:
    """``<metric>.png`` in the run folder for each of ``metrics`` the history has; returns the paths written.

    Metrics missing from the history are skipped; RunError if none of them is there.
    """
    df = read_history(run.history)
    best = _best_epoch(df, run.metrics)
    known = available_metrics(df)
    wanted = [m for m in metrics if m in known]
    if metrics and not wanted:
        raise RunError(f"{run.history}: none of the metrics {', '.join(metrics)} was recorded. "
                       f"Available metrics: {', '.join(known) or 'none'}.")
    return [plot_metric({run.name: df}, m, run.path / f"{m}.png", {run.name: best}) for m in wanted]


def recorded_default_metrics(runs: list[RunFolder]) -> list[str]:
    """Those of DEFAULT_METRICS that at least one run's history records (``plot``'s choice for several runs)."""
    recorded = {m for run in runs for m in available_metrics(read_history(run.history))}
    wanted = [m for m in DEFAULT_METRICS if m in recorded]
    if not wanted:
        raise RunError(f"none of the metrics {', '.join(DEFAULT_METRICS)} was recorded by these runs "
                       f"({', '.join(run.name for run in runs)}). Name one with --metric; recorded: "
                       f"{', '.join(sorted(recorded)) or 'none'}.")
    return wanted


def check_figure_path(out: Path) -> None:
    if out.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise RunError(f"--out {out}: a plot is written as .png, .svg or .pdf; end the file name in one of them.")


def plot_overlaid(runs: list[RunFolder], metrics: list[str] | None, out: Path) -> list[Path]:
    """``plot_runs`` for each metric (default: those recorded): ``out`` itself for one metric, else
    ``<out stem>-<metric><suffix>`` beside it."""
    check_figure_path(out)
    metrics = metrics or recorded_default_metrics(runs)
    return [plot_runs(runs, m, out if len(metrics) == 1 else out.with_name(f"{out.stem}-{m}{out.suffix}"))
            for m in metrics]


def plot_runs(runs: list[RunFolder], metric: str, out: Path) -> Path:
    """Several runs' ``metric`` curves overlaid in one figure, labelled by run folder name."""
    histories, best = {}, {}
    for run in runs:
        df = read_history(run.history)
        histories[run.name] = df
        best[run.name] = _best_epoch(df, run.metrics)
    return plot_metric(histories, metric, out, best)


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str], out: Path) -> Path:
    """Heatmap of counts, true classes as rows and predicted as columns, counts written in the cells."""
    cm = np.asarray(cm)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"{n} class names for a confusion matrix of shape {cm.shape}.")
    side = min(max(5.0, 0.45 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=class_names, rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=9 if n <= 20 else 7)
    ax.set_yticks(range(n), labels=class_names, fontsize=9 if n <= 20 else 7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({int(cm.sum())} samples)")
    if n <= 40:
        _write_counts(ax, cm, fontsize=8 if n <= 20 else 6)
    return save_figure(fig, out)


def _write_counts(ax, cm: np.ndarray, fontsize: int) -> None:
    """Each cell's count, white on dark cells and black on light ones."""
    threshold = cm.max() / 2 if cm.size else 0
    for (row, col), value in np.ndenumerate(cm):
        ax.text(col, row, str(int(value)), ha="center", va="center", fontsize=fontsize,
                color="white" if value > threshold else "black")
