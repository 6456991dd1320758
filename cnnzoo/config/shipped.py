"""The configs shipped with cnnzoo (package data): found by bare name, listed, copied out to edit.

In a source checkout they are the repository's configs/; in an installed wheel, cnnzoo/configs/.
A path that exists always wins over a shipped name.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from cnnzoo.config.schema import SCHEMA_FILE, SCHEMA_LINE
from cnnzoo.config.source import load_document
from cnnzoo.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1]  # cnnzoo/


def shipped_dir() -> Path:
    """cnnzoo/configs/ when installed from a wheel, else the checkout's configs/."""
    for candidate in (PACKAGE / "configs", PACKAGE.parent / "configs"):
        if candidate.is_dir():
            return candidate
    return PACKAGE / "configs"


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.yaml"))


def shipped_config(name: str) -> Path | None:
    """The shipped config called ``name`` (``lenet`` or ``lenet.yaml``), or None."""
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    path = shipped_dir() / f"{stem}.yaml"
    return path if "/" not in name and "\\" not in name and path.is_file() else None


@dataclass(frozen=True)
class ConfigChoice:
    path: Path
    shipped: bool  # True when a bare name was resolved to a shipped config


def resolve_config(arg: Path | str) -> ConfigChoice:
    """``arg`` itself when it exists (a path always wins), else the shipped config of that name; a missing
    ``configs/NAME.yaml`` (the README's own commands, run outside a checkout) is the shipped NAME too.

    An argument that is neither is returned unchanged, so the config loader reports it as missing.
    """
    path = Path(arg)
    if path.exists():
        return ConfigChoice(path, shipped=False)
    in_configs = len(path.parts) == 2 and path.parts[0] == "configs"
    found = shipped_config(path.name if in_configs else str(arg))
    return ConfigChoice(found, shipped=True) if found else ConfigChoice(path, shipped=False)


def init_config(name: str, dest: str | Path | None) -> Path:
    """Copy the shipped config ``name`` to ``dest`` (default ./<name>.yaml) to edit; never overwrites.

    A config that inherits (`base:`) is written with its base merged in, so the copy stands alone.
    """
    source = shipped_config(name)
    if source is None:
        raise ConfigError(f"no shipped config named {name!r}.", file=name,
                          hint=f"Shipped configs: {', '.join(shipped_names())} (`cnnzoo configs` describes them).")
    folder = dest is not None and str(dest).endswith(("/", os.sep))  # a str: Path() drops the slash
    dest = Path(dest) if dest is not None else Path(f"{source.stem}.yaml")
    if dest.is_dir() or folder:
        dest = dest / source.name
    text = _standalone_text(source)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, or no permission
        raise ConfigError(f"cannot make the folder {dest.parent} ({exc.strerror or exc}).", file=str(dest),
                          hint="Pass a FILE in a folder you can write to.") from None
    try:
        with open(dest, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ConfigError("the file already exists; `cnnzoo init` never overwrites a file.", file=str(dest),
                          hint="Pass another FILE, or move the existing file away first.") from None
    except OSError as exc:
        raise ConfigError(f"cannot write the file ({exc.strerror or exc}).", file=str(dest),
                          hint="Pass a FILE in a folder you can write to.") from None
    return dest


def _standalone_text(source: Path) -> str:
    import yaml

    text = source.read_text(encoding="utf-8")
    # the copy lives elsewhere: point its editor schema line at the shipped schema file
    text = text.replace(SCHEMA_LINE, SCHEMA_LINE.replace(SCHEMA_FILE, (source.parent / SCHEMA_FILE).as_uri()), 1)
    if "\nbase:" not in f"\n{text}":
        return text
    merged = yaml.safe_dump(load_document(source).data, sort_keys=False, width=110)
    header = "".join(line + "\n" for line in itertools.takewhile(lambda l: l.startswith("#"), text.splitlines()))
    return f"{header}# Written by `cnnzoo init {source.stem}` with its `base:` merged in.\n{merged}"
