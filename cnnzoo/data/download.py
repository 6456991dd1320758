"""Download to the cache: temporary name, verify, then rename; nothing half-written is left."""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

from cnnzoo.data.progress import progress_bar
from cnnzoo.errors import DataError

CHUNK = 1 << 20


class DownloadFailed(Exception):
    """The file could not be fetched (offline, refused, HTTP error); the reason is the message."""


def download(url: str, dest: Path, *, sha256: str | None = None,
             verify: Callable[[Path], None] | None = None, progress: bool = True,
             timeout: float = 30.0) -> Path:
    """Fetch `url` into `dest`, checking `sha256` (or calling `verify`) before the file gets its name."""
    tmp = _temp_file(dest)
    try:
        with open(tmp, "wb") as out:
            digest = _stream(url, out, dest.name, progress, timeout)
        if sha256 and digest != sha256.lower():
            raise DataError(f"{dest.name} downloaded from {url} has sha256 {digest}, but the published "
                            f"checksum is {sha256}; the download is corrupt or the file changed, so it "
                            f"was deleted and nothing was saved in {dest.parent}. Try again, or fetch "
                            f"the file by hand and put it in the data directory.")
        if verify is not None:
            verify(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _temp_file(dest: Path) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(dest)
        tmp.open("xb").close()
    except OSError as exc:
        raise DownloadFailed(f"cannot write to the cache folder {dest.parent} ({exc.strerror})") from None
    return tmp


def temp_name(dest: Path) -> Path:
    """A hidden sibling of `dest` that no other writer uses; created with the umask's permissions."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")


def _stream(url: str, out: BinaryIO, name: str, progress: bool, timeout: float) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with progress_bar(f"downloading {name}", total, enabled=progress, transfer=True) as advance:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    advance(len(chunk))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadFailed(_reason(exc)) from None
    if total is not None and received < total:  # http.client returns a cut-off body without an error
        raise DownloadFailed(f"the connection closed after {received:,} of {total:,} bytes (incomplete)")
    return digest.hexdigest()


def _reason(exc: Exception) -> str:
    reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
    return str(reason).strip() or type(exc).__name__
