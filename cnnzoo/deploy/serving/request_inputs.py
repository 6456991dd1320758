"""The bodies of `POST /predict` as examples, read by the same functions `cnnzoo predict` reads files with.

Three kinds of body: uploaded files (multipart field `file`, repeatable), TF Serving's JSON
(`{"instances": [...]}` of `{"b64": "<base64 image file>"}` or arrays of the input's shape: raw 0-255
pixels for image runs, the series' values for 1D runs), and one image file as the whole body
(`Content-Type: image/png`, `image/jpeg`, ...). Anything that cannot be read is a `BadRequest` with a
one-line reason that names the input; nothing is predicted for that request.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnzoo.data.inputs import PIXELS, Example, InputFailure, read_series
from cnnzoo.errors import CnnzooError

SERIES_SUFFIXES = (".tsv", ".csv", ".npy")
MAX_NAME = 200  # characters of an upload's file name kept in answers


class BadRequest(Exception):
    """A request that is answered with `status` and the one-line reason in the message."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def from_multipart(body: bytes, content_type: str, dataset: str, shape: tuple[int, ...],
                   max_instances: int) -> list[Example]:
    """The `file` parts of a multipart/form-data body: images decoded, or series files (.tsv/.csv/.npy) read
    row by row."""
    return from_uploads(file_parts(body, content_type, max_instances), dataset, shape, max_instances)


def file_parts(body: bytes, content_type: str, max_parts: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each part named `file`, parsed by python-multipart in memory (the body is already
    within the size limit): no temporary files, no thread hop per part."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    if not options.get(b"boundary"):
        raise BadRequest(400, "the multipart/form-data content type names no boundary")
    parts: list[dict] = []
    header: dict[str, bytes] = {}

    def begin_part():
        if len(parts) >= max_parts:
            raise BadRequest(413, f"the request holds more than {max_parts} parts (--max-instances); send fewer "
                                  f"per request")
        parts.append({"headers": {}, "data": []})

    def header_field(data, start, end):
        header["field"] = header.get("field", b"") + data[start:end]

    def header_value(data, start, end):
        header["value"] = header.get("value", b"") + data[start:end]

    def header_end():
        parts[-1]["headers"][header.pop("field", b"").lower()] = header.pop("value", b"")

    callbacks = {"on_part_begin": begin_part, "on_header_field": header_field, "on_header_value": header_value,
                 "on_header_end": header_end, "on_part_data": lambda data, start, end: parts[-1]["data"].append(
                     data[start:end])}
    try:
        parser = MultipartParser(options[b"boundary"], callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(400, f"the multipart body cannot be parsed ({exc})") from None
    files = []
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if disposition.get(b"name") != b"file":
            continue
        if b"filename" not in disposition:
            raise BadRequest(400, "the `file` field must be an uploaded file (curl -F file=@image.png), not text")
        files.append((disposition[b"filename"].decode("utf-8", "replace"), b"".join(part["data"])))
    return files


def from_uploads(files: list[tuple[str, bytes]], dataset: str, shape: tuple[int, ...],
                 max_instances: int) -> list[Example]:
    """Uploaded (file name, bytes): images decoded, or series files (.tsv/.csv/.npy) read row by row."""
    if not files:
        raise BadRequest(400, "the multipart body has no `file` field; upload each input as a field named file "
                              "(curl -F file=@image.png)")
    examples = []
    for name, data in files:
        name = name[:MAX_NAME] or "upload"
        examples += _image(name, data, dataset, shape) if dataset in PIXELS else _series_file(name, data, shape)
        _check_count(len(examples), max_instances)
    return examples


def from_image_body(data: bytes, dataset: str, shape: tuple[int, ...]) -> list[Example]:
    if dataset not in PIXELS:
        raise BadRequest(415, "this run reads series, not images: send JSON {\"instances\": [[...], ...]} or "
                              "upload a .tsv/.csv/.npy file")
    return _image("body", data, dataset, shape)


def from_json(body: bytes, dataset: str, shape: tuple[int, ...], max_instances: int) -> list[Example]:
    """TF Serving's row format: {"instances": [instance, ...]}, each {"b64": ...} or an array."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest(400, "the body is not valid JSON; send {\"instances\": [...]}") from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not instances:
        raise BadRequest(400, "the JSON body needs \"instances\": a non-empty list, each {\"b64\": \"<base64 image "
                              "file>\"} or an array of the input's shape (TF Serving's REST format)")
    _check_count(len(instances), max_instances)
    return [_instance(f"instances[{i}]", item, dataset, shape) for i, item in enumerate(instances)]


def _instance(name: str, item: Any, dataset: str, shape: tuple[int, ...]) -> Example:
    if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
        if dataset not in PIXELS:
            raise BadRequest(422, f"{name}: this run reads series, given as arrays of {shape[0]} numbers, not b64 "
                                  f"images")
        try:
            data = base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(422, f"{name}: b64 is not base64 text") from None
        return _image(name, data, dataset, shape)[0]
    if isinstance(item, list):
        return Example(name, _array(name, item, dataset, shape))
    raise BadRequest(422, f"{name}: each instance is {{\"b64\": \"<base64 image file>\"}} or an array of numbers")


def _array(name: str, item: list, dataset: str, shape: tuple[int, ...]) -> np.ndarray:
    """Raw pixels (integers 0..255, (H, W, C) or (H, W) for one channel) or a series ((L,) or (L, 1))."""
    try:
        array = np.asarray(item)
    except (ValueError, TypeError, RecursionError):
        raise BadRequest(422, f"{name}: is not a rectangular array of numbers") from None
    if array.dtype.kind not in "iuf":  # true/false, strings, nulls, ragged rows (object)
        raise BadRequest(422, f"{name}: is not a rectangular array of numbers")
    array = array.astype(np.float64)
    if dataset in PIXELS:
        accepted = [shape] + ([shape[:2]] if shape[2] == 1 else [])
        if array.shape not in accepted:
            raise BadRequest(422, f"{name}: has shape {list(array.shape)}; this run takes pixels of shape "
                                  f"{list(shape)}")
        if not np.all((array >= 0) & (array <= 255) & (array == np.round(array))):
            raise BadRequest(422, f"{name}: pixels are integers from 0 to 255 (raw, before data.scale)")
        return array.astype(np.uint8).reshape(shape)
    if array.shape not in (shape[:1], shape):
        raise BadRequest(422, f"{name}: has shape {list(array.shape)}; this run's series have shape {list(shape)} "
                              f"(or [{shape[0]}])")
    if not np.isfinite(array).all():
        raise BadRequest(422, f"{name}: holds NaN or infinite values")
    return array.astype(np.float32).reshape(shape)


def _image(name: str, data: bytes, dataset: str, shape: tuple[int, ...]) -> list[Example]:
    try:
        return [Example(name, PIXELS[dataset](data, shape))]
    except (InputFailure, CnnzooError) as exc:
        raise BadRequest(422, f"{name}: {exc}") from None


def _series_file(name: str, data: bytes, shape: tuple[int, ...]) -> list[Example]:
    """The upload written to a private temporary file with its suffix, then read as predict reads that file."""
    suffix = Path(name).suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise BadRequest(422, f"{name}: is not a series file; this run reads .tsv or .csv (UCR layout) or .npy "
                              f"uploads, or JSON arrays")
    with tempfile.TemporaryDirectory(prefix="cnnzoo-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            rows = read_series(path, shape)
        except (InputFailure, CnnzooError) as exc:
            raise BadRequest(422, f"{name}: {exc}") from None
    return [Example(name + row.name[len(str(path)):], row.array) for row in rows]


def _check_count(count: int, max_instances: int) -> None:
    if count > max_instances:
        raise BadRequest(413, f"the request holds more than {max_instances} inputs (--max-instances); send fewer "
                              f"per request")


def read_batch(parse: Callable[[], list[Example]]) -> tuple[list[str], np.ndarray]:
    """The names of the inputs `parse` reads, and the inputs as one array (both made off the event loop)."""
    examples = parse()
    return [example.name for example in examples], np.stack([example.array for example in examples])

