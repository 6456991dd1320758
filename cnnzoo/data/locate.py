"""Where dataset files are found: explicit path, data directory, Keras cache, then a download."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnzoo.data.download import DownloadFailed, download
from cnnzoo.errors import DataError

PUT_HINT = ("Put it in a data directory and pass `--data-dir DIR` or set CNNZOO_DATA_DIR=DIR, "
            "or point `data.path` at it.")


@dataclass(frozen=True)
class Resource:
    """A dataset's file or folder: the names it goes by and how to fetch it.

    names:  paths tried inside each folder searched; the first is the downloaded file's name.
    accept: whether a candidate path is a usable copy.
    expect: what the user should provide, for messages.
    """

    what: str
    names: tuple[str, ...]
    accept: Callable[[Path], bool]
    expect: str
    url: str | None = None
    sha256: str | None = None
    verify: Callable[[Path], None] | None = None
    max_bytes: int = 1 << 30
    hint: str = PUT_HINT


def keras_cache_dir() -> Path:
    """`$KERAS_HOME/datasets`, else `~/.keras/datasets`, as Keras itself uses."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets"


def array_cache_dir(option: Path | None) -> Path:
    """Where decoded arrays are cached: the argument, else CNNZOO_CACHE_DIR, else ~/.cache/cnnzoo."""
    return Path(option or os.environ.get("CNNZOO_CACHE_DIR") or "~/.cache/cnnzoo").expanduser()


def explicit_path(path: str | Path, data_dir: Path | None) -> Path:
    """`data.path` as given, or relative to the data directory when it is not found as given."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute() or data_dir is None:
        if not given.exists():
            raise DataError(f"data.path {given} does not exist; point `data.path` at an existing file or folder.")
        return given
    inside = data_dir / given
    if not inside.exists():
        raise DataError(f"data.path {given} does not exist, neither as given nor inside the data directory "
                        f"{data_dir}; point `data.path` at an existing file or folder.")
    return inside


def locate(res: Resource, *, spec_path: str | None, data_dir: Path | None, progress: bool = True,
           keras_cache: Path | None = None, url: str | None = None) -> Path:
    """The first usable copy of `res`: spec path, data directory, Keras cache, else a fresh download."""
    if spec_path is not None:
        return _in_explicit(res, explicit_path(spec_path, data_dir))
    keras_cache = keras_cache or keras_cache_dir()
    looked = []
    for folder in (data_dir, keras_cache):
        if folder is None:
            continue
        for name in res.names:
            if res.accept(folder / name):
                return folder / name
            looked.append(str(folder / name))
    url = url or res.url
    if url is None:
        raise _missing(res, looked, data_dir, None)
    try:
        return download(url, keras_cache / res.names[0], sha256=res.sha256, verify=res.verify, progress=progress,
                        max_bytes=res.max_bytes)
    except DownloadFailed as exc:
        raise _missing(res, looked, data_dir, f"downloading {url} failed ({exc})") from None


def _in_explicit(res: Resource, path: Path) -> Path:
    for candidate in (path, *(path / name for name in res.names)):
        if res.accept(candidate):
            return candidate
    raise DataError(f"data.path {path} is not usable as {res.what} data: expected {res.expect}. "
                    f"Point `data.path` at such a file or folder, or leave it out to search the data directory.")


def _missing(res: Resource, looked: list[str], data_dir: Path | None, download_note: str | None) -> DataError:
    places = ", ".join(looked)
    no_dir = "" if data_dir else " (no data directory was given: --data-dir or CNNZOO_DATA_DIR)"
    note = f"; {download_note}" if download_note else ""
    return DataError(f"{res.what} data not found: expected {res.expect}. Looked in {places}{no_dir}{note}. "
                     f"{res.hint}")
