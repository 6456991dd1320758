"""Download to the cache: temporary name, verify, then rename (cnnzoo.atomic); nothing half-written is
left, and a temporary file left by a killed download is removed by the next one."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

from cnnzoo.atomic import atomic_save, remove_stale_temps
from cnnzoo.data.progress import progress_bar
from cnnzoo.errors import DataError

CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 1 << 30  # when the resource does not say


class DownloadFailed(Exception):
    """The file could not be fetched (offline, refused, HTTP error); the reason is the message."""


def download(url: str, dest: Path, *, sha256: str | None = None,
             verify: Callable[[Path], None] | None = None, progress: bool = True,
             timeout: float = 30.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Fetch `url` into `dest`, checking `sha256` (or calling `verify`) before the file gets its name.
    At most `max_bytes` are accepted; an https address is never followed to a plain-http one."""
    def fetch(tmp: Path) -> None:
        with open(tmp, "xb") as out:
            digest = _stream(url, out, dest.name, progress, timeout, max_bytes)
        if sha256 and digest != sha256.lower():
            raise DataError(f"{dest.name} downloaded from {url} has sha256 {digest}, but the published "
                            f"checksum is {sha256}; the download is corrupt or the file changed, so it "
                            f"was deleted and nothing was saved in {dest.parent}. Try again, or fetch "
                            f"the file by hand and put it in the data directory.")
        if verify is not None:
            verify(tmp)

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(dest, exc) from None
    remove_stale_temps(dest)
    return atomic_save(dest, fetch, error=_unwritable)


def _unwritable(dest: Path, exc: OSError) -> DownloadFailed:
    return DownloadFailed(f"cannot write to the cache folder {dest.parent} ({exc.strerror or exc})")


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https to anything but https."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https:") and not newurl.startswith("https:"):
            raise DownloadFailed(f"{req.full_url} redirected to {newurl}, which is not https; refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _stream(url: str, out: BinaryIO, name: str, progress: bool, timeout: float, max_bytes: int) -> str:
    digest = hashlib.sha256()
    opener = urllib.request.build_opener(_NoDowngrade)
    try:
        with opener.open(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total is not None and total > max_bytes:
                raise DownloadFailed(f"the server announces {total:,} bytes, more than the {max_bytes:,} "
                                     f"this file can have")
            received = 0
            with progress_bar(f"downloading {name}", total, enabled=progress, transfer=True) as advance:
                while chunk := response.read(CHUNK):
                    if received + len(chunk) > max_bytes:
                        raise DownloadFailed(f"more than {max_bytes:,} bytes arrived, more than this file can have")
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
