"""What every command shares: the common options and arguments, turning user errors into one paragraph and
exit code 2, the shipped-config lookup and path printing. Nothing here imports TensorFlow."""

from __future__ import annotations

import functools
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.errors import RunError
from cnnzoo.evaluation import SPLITS
from cnnzoo.runs.folder import CHECKPOINTS

SetOption = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config value: dotted.path=value (YAML-typed), repeatable.")]

DataDirOption = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with datasets (else $CNNZOO_DATA_DIR, then ~/.keras/datasets, then download).")]

RunDataDirOption = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with datasets (else the one the run was trained with, if it exists here, then "
                       "$CNNZOO_DATA_DIR, then ~/.keras/datasets, then download).")]

ConfigArg = Annotated[Path, typer.Argument(
    help="A YAML config, e.g. configs/lenet.yaml, or the name of a shipped one (lenet; see `cnnzoo configs`).")]

RunDirArg = Annotated[Path, typer.Argument(help="A run folder, e.g. runs/lenet-20260101-120000.")]

ForceOption = Annotated[bool, typer.Option(
    "--force", help="Go on even when the memory estimate exceeds the memory available.")]

CheckpointOption = Annotated[str, typer.Option("--checkpoint", help=" or ".join(CHECKPOINTS) + ".")]
SplitOption = Annotated[str, typer.Option("--split", help=" or ".join(SPLITS) + ".")]
TtaOption = Annotated[str, typer.Option(
    "--tta", help="Test-time augmentation: none, or flip (average with the mirrored image).")]


def user_errors(command, needs_tensorflow: bool = True):
    """Turn CnnzooError into a clean message and exit code 2: never a traceback for a user mistake."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from cnnzoo.errors import CnnzooError
        from cnnzoo.host_memory import out_of_memory

        try:
            from cnnzoo.tensorflow_import import import_tensorflow

            with out_of_memory(f"running `cnnzoo {command.__name__.rstrip('_')}`"):  # where no phase said more
                if needs_tensorflow:
                    import_tensorflow()
                return command(*args, **kwargs)
        except CnnzooError as exc:
            from cnnzoo.terminal import plain, printable  # user text: no markup, no control characters

            try:
                stderr().print(f"[bold red]error:[/] {plain(exc)}", highlight=False, markup=True, soft_wrap=True)
            except MemoryError:  # too little memory left even for rich: plain text still fits
                sys.stderr.write(f"error: {printable(exc)}\n")
            code = exc.exit_code
            if getattr(exc, "exit_now", False):  # skip interpreter teardown (see distribute.WorkerLost)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(exc.exit_code)
            exc.__traceback__ = exc.__context__ = exc.__cause__ = None  # frames that hold a streamed iterator
            del exc
            raise typer.Exit(code) from None
        finally:
            release_pipelines()
    return wrapper


def release_pipelines() -> None:
    """After a command that streamed data, free what it left in reference cycles (a Keras model keeps the
    iterator of a fit an error interrupted) now: a streamed tf.data iterator freed during interpreter
    shutdown waits forever for its decode threads, which can no longer take the GIL."""
    import gc

    streams = sys.modules.get("cnnzoo.data.stream_pipeline")  # never imported: nothing streamed
    if streams is not None and streams.PIPELINES_MADE:
        gc.collect()


def without_tensorflow(command):
    """user_errors for commands that only read files (runs, compare, configs): they start in well under a second."""
    return user_errors(command, needs_tensorflow=False)


def config_path(arg: Path) -> Path:
    """``arg`` when it exists, else the shipped config of that name (`cnnzoo train lenet`); says which."""
    from cnnzoo.config.shipped import resolve_config

    choice = resolve_config(arg)
    if choice.shipped:
        stderr().print(f"using the shipped config {choice.path}", highlight=False, soft_wrap=True)
    return choice.path


def run_data_dir(option: Path | None, run_path: Path | None) -> Path | None:
    """--data-dir, else the data folder the run in `run_path` (a run folder, or None) was trained with, else
    $CNNZOO_DATA_DIR (cnnzoo.data.resolve_data_dir); says on stderr which folder the data is read from."""
    from cnnzoo.data import resolve_data_dir
    from cnnzoo.runs.folder import RunFolder
    from cnnzoo.terminal import plain

    recorded = RunFolder(run_path).recorded_data_dir() if run_path is not None else None
    return resolve_data_dir(option, recorded, say=lambda text: stderr().print(plain(text), highlight=False,
                                                                               soft_wrap=True))


def stderr():
    from cnnzoo.terminal import console

    return console(stderr=True)


def echo_paths(paths) -> None:
    from cnnzoo.terminal import printable

    for path in paths:
        typer.echo(printable(path))


def choices(name: str, names: tuple[str, ...]) -> type:
    """A Typer choice type of a registry's names (its --help lists them)."""
    return Enum(name, {value: value for value in names}, type=str)


def check_choice(option: str, value: str, names: tuple[str, ...]) -> str:
    """``value`` when it is one of ``names``, else one error paragraph naming the option and the choices."""
    if value not in names:
        allowed = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
        raise RunError(f"{option} must be {allowed} (got {value!r}).")
    return value
