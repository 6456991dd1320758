"""The commands about config files: `cnnzoo configs`, `cnnzoo init`, `cnnzoo schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import user_errors, without_tensorflow


@user_errors
def configs(json_: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False):
    """The shipped configs (usable by bare name: `cnnzoo train lenet`), with description, dataset and parameters."""
    from cnnzoo.terminal import console as make_console

    from cnnzoo.model.catalog import describe_shipped

    console = make_console(stderr=json_)
    with console.status("counting parameters") as status:
        infos = describe_shipped(on_build=lambda name: status.update(f"counting the parameters of {name}"))
    if json_:
        typer.echo(json.dumps([{**info.__dict__, "path": str(info.path)} for info in infos], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"shipped configs ({infos[0].path.parent if infos else 'none'})", title_justify="left")
    for header, justify in (("name", "left"), ("dataset", "left"), ("params", "right"), ("description", "left")):
        table.add_column(header, justify=justify, overflow="fold")
    for info in infos:
        table.add_row(info.name, info.dataset, f"{info.params:,}", info.description)
    console.print(table)


@without_tensorflow
def init(name: Annotated[str, typer.Argument(help="A shipped config name, e.g. lenet (see `cnnzoo configs`).")],
         file: Annotated[Optional[str], typer.Argument(
             help="Where to write it (default ./NAME.yaml); a folder (or a path ending in /) gets NAME.yaml inside."
         )] = None):
    """Copy a shipped config out to edit; never overwrites a file."""
    from cnnzoo.config.shipped import init_config

    written = init_config(name, file)
    typer.echo(f"wrote {written}; train it with: cnnzoo train {written}")


@user_errors
def schema(out: Annotated[Optional[Path], typer.Option(
        help="Write the schema here (e.g. cnnzoo.schema.json) instead of printing it.")] = None):
    """A JSON Schema of the config format, for editors (yaml-language-server, VS Code YAML)."""
    from cnnzoo.atomic import atomic_write_text
    from cnnzoo.config.schema import SCHEMA_LINE, schema_text

    text = schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write_text(out, text)
    typer.echo(f"wrote {out}; point a config at it with a first line like:\n"
               f"  {SCHEMA_LINE.replace('cnnzoo.schema.json', str(out))}")
