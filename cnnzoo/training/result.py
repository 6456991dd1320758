"""TrainResult: what a training run ended with (its folder and record) and its printed report."""

from __future__ import annotations

from dataclasses import dataclass

from cnnzoo.host_memory import human_bytes
from cnnzoo.runs.folder import RunFolder
from cnnzoo.runs.record import RunRecord
from cnnzoo.terminal import plain


@dataclass
class TrainResult:
    """What a training run ended with: its folder and its record, exactly as metrics.json holds it."""

    run: RunFolder
    record: RunRecord

    @property
    def interrupted(self) -> str | None:
        """The signal that stopped training, if one did."""
        return self.record.interrupted

    @property
    def epochs_completed(self) -> int:
        return self.record.epochs_completed

    def render(self, console) -> None:
        """The result table, then what to do next after an interruption or a NaN loss."""
        from rich.table import Table

        record = self.record
        table = Table(title=f"{plain(self.run.name)}: best epoch {record.best_epoch} of {record.epochs_completed}",
                      title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in record.test.items():
            table.add_row(f"test {key}", f"{value:.4f}")
        for key in ("val_accuracy", "val_loss"):
            if key in record.best:
                table.add_row(f"best {key}", f"{record.best[key]:.4f}")
        table.add_row("wall time", f"{record.wall_seconds:.1f} s")
        table.add_row("samples/s", f"{record.samples_per_second}")
        table.add_row("params", f"{record.params:,}")
        if record.peak_rss_bytes is not None:
            table.add_row("memory: estimate / peak RSS", f"{human_bytes(record.memory_estimate_bytes or 0)} / "
                                                         f"{human_bytes(record.peak_rss_bytes)}")
        console.print(table)
        for name, values in (record.learned_weights or {}).items():
            console.print(f"learned {plain(name)}: {', '.join(f'{v:.4f}' for v in values)}", highlight=False)
        path = plain(self.run.path)
        if record.interrupted:
            console.print(f"[yellow]Stopped by {record.interrupted} after {record.epochs_completed} complete "
                          f"epoch(s).[/] The run folder is consistent: `cnnzoo eval {path}` and "
                          f"`cnnzoo plot {path}` work on it. Continue with:\n"
                          f"  cnnzoo train --resume {path}", highlight=False)
        if record.nan_loss:
            console.print(f"[red]Training stopped: the loss became NaN or infinite at epoch "
                          f"{record.nan_loss['epoch']}, step {record.nan_loss['step']}.[/] The best checkpoint so far is kept. Check the learning "
                          "rate (try 10x lower), the input scaling (data.scale) and the loss.")
        console.print(f"run folder: [bold]{path}[/]")
