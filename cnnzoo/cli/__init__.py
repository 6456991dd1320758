"""The `cnnzoo` command line: the Typer app, with every command registered in the order `--help` lists them.

Each module below holds one group of commands as plain functions; only this file knows the app, so no
command module imports another. A command parses its arguments, calls one function of the stages below
and renders the result; user errors become one paragraph and exit code 2 (`cli.common.user_errors`)."""

from __future__ import annotations

import sys

import typer

from cnnzoo.cli import configs, data, deploy, evaluation, pictures, tracking, training

app = typer.Typer(help="Train classic convolutional networks from declarative YAML configs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

COMMANDS = (  # (name, function): the order of `cnnzoo --help`
    ("summary", training.summary), ("train", training.train), ("eval", evaluation.eval_),
    ("predict", deploy.predict), ("export", deploy.export),
    ("serve", deploy.serve), ("plot", evaluation.plot), ("bench", training.bench),
    ("explain", pictures.explain), ("filters", pictures.filters), ("activations", pictures.activations),
    ("configs", configs.configs), ("init", configs.init), ("schema", configs.schema),
    ("runs", tracking.runs), ("compare", tracking.compare), ("sweep", tracking.sweep), ("pack", data.pack),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


@app.callback()
def _root() -> None:
    """Train classic convolutional networks from declarative YAML configs."""


def main() -> None:  # pragma: no cover - used by `python -m cnnzoo`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
