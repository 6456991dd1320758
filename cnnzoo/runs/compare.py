"""`cnnzoo compare`: what differs between runs (resolved configs), their metrics side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo.config.source import format_path
from cnnzoo.runs.folder import RunFolder
from cnnzoo.runs.table import RunRow, read_row
from cnnzoo.terminal import plain

MISSING = "-"
METRIC_ROWS = ("status", "epochs", "best_epoch", "monitor", "best_value", "test_accuracy", "params", "precision",
               "wall_seconds", "samples_per_second", "date")


@dataclass
class Comparison:
    runs: list[RunRow]
    differences: list[tuple[str, list[Any]]]  # dotted config path, one value per run (MISSING where absent)

    def to_json(self) -> dict[str, Any]:
        return {"runs": [r.to_json() for r in self.runs],
                "config_differences": {path: values for path, values in self.differences}}


def compare_runs(runs: list[RunFolder]) -> Comparison:
    configs = [flatten(run.config_data()) for run in runs]
    paths = list(dict.fromkeys(p for config in configs for p in config))
    differences = [(p, [c.get(p, MISSING) for c in configs]) for p in paths
                   if len({repr(c.get(p, MISSING)) for c in configs}) > 1]
    return Comparison([read_row(run.path) for run in runs], differences)


def flatten(value: Any, path: tuple = ()) -> dict[str, Any]:
    """Leaves of nested mappings and lists by dotted path: ``model.layers[5].Dense.units``."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in flatten(item, path + (key,)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, path + (i,)).items()}
    return {format_path(path): value}


def render_comparison(comparison: Comparison):
    """Two rich tables: the differing config paths, then the metrics, one column per run."""
    from rich.console import Group
    from rich.table import Table

    names = [r.name for r in comparison.runs]
    config = Table(title="config differences", title_justify="left")
    metrics = Table(title="metrics", title_justify="left")
    for table, first in ((config, "config path"), (metrics, "metric")):
        table.add_column(first)
        for name in names:
            table.add_column(name, overflow="fold")
    for path, values in comparison.differences:
        config.add_row(_text(path), *(_text(v) for v in values))
    if not comparison.differences:
        config.add_row("(none: the resolved configs are identical)", *[""] * len(names))
    keys = list(METRIC_ROWS) + sorted({k for r in comparison.runs for k in r.metrics} - set(METRIC_ROWS))
    for key in keys:
        metrics.add_row(key, *(_text(r.value(key)) for r in comparison.runs))
    return Group(config, metrics)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"

    return plain(value)  # config values are user text
