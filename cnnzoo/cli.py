"""The `cnnzoo` command line: thin typed commands; user errors become one paragraph and exit code 2."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Train classic convolutional networks from declarative YAML configs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

SetOption = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config value: dotted.path=value (YAML-typed), repeatable.")]
DataDirOption = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with datasets (else $CNNZOO_DATA_DIR, then ~/.keras/datasets, then download).")]
ConfigArg = Annotated[Path, typer.Argument(help="A YAML config, e.g. configs/lenet.yaml.")]
RunDirArg = Annotated[Path, typer.Argument(help="A run folder, e.g. runs/lenet-20260101-120000.")]


@app.callback()
def _root() -> None:
    """Train classic convolutional networks from declarative YAML configs."""


def _user_errors(command):
    """Turn CnnzooError into a clean message and exit code 2: never a traceback for a user mistake."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from cnnzoo.errors import CnnzooError

        try:
            from cnnzoo.runtime import import_tensorflow

            import_tensorflow()
            return command(*args, **kwargs)
        except CnnzooError as exc:
            _stderr().print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
    return wrapper


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


@app.command()
@_user_errors
def summary(config: ConfigArg, set_: SetOption = None,
            json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
            expand: Annotated[bool, typer.Option("--expand", help="Also list the layers inside blocks.")] = False):
    """Layers, output shapes, parameters and FLOPs of a config's model; no training."""
    from cnnzoo.builder import build_model
    from cnnzoo.config import load_config
    from cnnzoo.summary import render_summary, summarize

    spec = load_config(config, set_ or [])
    result = summarize(spec, build_model(spec))
    if json_:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        from rich.console import Console

        Console().print(render_summary(result, expand=expand))


def main() -> None:  # pragma: no cover - used by `python -m cnnzoo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
