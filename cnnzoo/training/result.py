"""TrainResult: what a training run ended with, as metrics.json holds it, and its printed report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnzoo.runs.folder import RunFolder


@dataclass
class TrainResult:
    """What a training run ended with; `metrics` is exactly what metrics.json holds."""

    run: RunFolder
    metrics: dict[str, Any]
    best_epoch: int | None
    epochs_completed: int
    test: dict[str, float]
    best: dict[str, float]
    wall_seconds: float
    samples_per_second: float | None
    params: int
    interrupted: str | None  # the signal that stopped training, if one did
    nan_at: dict | None  # {"epoch", "step"} where the loss stopped being finite

    @classmethod
    def from_metrics(cls, run: RunFolder, metrics: dict[str, Any]) -> "TrainResult":
        return cls(run, metrics, metrics["best_epoch"], metrics["epochs_completed"], metrics["test"],
                   metrics["best"], metrics["wall_seconds"], metrics["samples_per_second"], metrics["params"],
                   metrics["interrupted"], metrics["nan_loss"])

    def render(self, console) -> None:
        """The result table, then what to do next after an interruption or a NaN loss."""
        from rich.table import Table

        from cnnzoo.terminal import plain

        table = Table(title=f"{plain(self.run.name)}: best epoch {self.best_epoch} of {self.epochs_completed}",
                      title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in self.test.items():
            table.add_row(f"test {key}", f"{value:.4f}")
        for key in ("val_accuracy", "val_loss"):
            if key in self.best:
                table.add_row(f"best {key}", f"{self.best[key]:.4f}")
        table.add_row("wall time", f"{self.wall_seconds:.1f} s")
        table.add_row("samples/s", f"{self.samples_per_second}")
        table.add_row("params", f"{self.params:,}")
        if "peak_rss_bytes" in self.metrics:
            from cnnzoo.host_memory import human_bytes

            table.add_row("memory: estimate / peak RSS", f"{human_bytes(self.metrics['memory_estimate_bytes'])} / "
                                                         f"{human_bytes(self.metrics['peak_rss_bytes'])}")
        console.print(table)
        for name, values in (self.metrics.get("learned_weights") or {}).items():
            console.print(f"learned {plain(name)}: {', '.join(f'{v:.4f}' for v in values)}", highlight=False)
        path = plain(self.run.path)
        if self.interrupted:
            console.print(f"[yellow]Stopped by {self.interrupted} after {self.epochs_completed} complete "
                          f"epoch(s).[/] The run folder is consistent: `cnnzoo eval {path}` and "
                          f"`cnnzoo plot {path}` work on it. Continue with:\n"
                          f"  cnnzoo train --resume {path}", highlight=False)
        if self.nan_at:
            console.print(f"[red]Training stopped: the loss became NaN or infinite at epoch {self.nan_at['epoch']}, "
                          f"step {self.nan_at['step']}.[/] The best checkpoint so far is kept. Check the learning "
                          "rate (try 10x lower), the input scaling (data.scale) and the loss.")
        console.print(f"run folder: [bold]{path}[/]")
