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
import io
import json
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnzoo.data.images import IMAGE_FORMATS, MAX_IMAGE_PIXELS
from cnnzoo.data.inputs import PIXELS, SERIES_SUFFIXES, Example, InputFailure, check_pixels, read_series
from cnnzoo.errors import CnnzooError
from cnnzoo.terminal import printable

MAX_NAME = 200  # characters of an upload's file name kept in answers
MAX_REQUEST_PIXELS = 2 * MAX_IMAGE_PIXELS  # decoded for one request at most: a few tenths of a second


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

    ended = []
    callbacks = {"on_part_begin": begin_part, "on_header_field": header_field, "on_header_value": header_value,
                 "on_header_end": header_end, "on_part_data": lambda data, start, end: parts[-1]["data"].append(
                     data[start:end]), "on_end": lambda: ended.append(True)}
    try:
        parser = MultipartParser(options[b"boundary"], callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(400, f"the multipart body cannot be parsed ({exc})") from None
    if not ended:
        raise BadRequest(400, "the multipart body ends before its closing boundary: it was cut off")
    files = []
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if disposition.get(b"name") != b"file":
            continue
        files.append((_file_name(disposition), b"".join(part["data"])))
    return files


def _file_name(disposition: dict[bytes, bytes]) -> str:
    """The part's file name (RFC 7578 `filename`, or RFC 5987 `filename*=UTF-8''...`), control characters shown
    as escapes; BadRequest for a text field."""
    if b"filename" in disposition:
        name = disposition[b"filename"].decode("utf-8", "replace")
    elif b"filename*" in disposition:
        _, _, quoted = disposition[b"filename*"].decode("latin-1").partition("''")
        name = urllib.parse.unquote(quoted, errors="replace")
    else:
        raise BadRequest(400, "the `file` field must be an uploaded file (curl -F file=@image.png), not text")
    return printable(name[:MAX_NAME]).replace("\t", "\\t").replace("\n", "\\n") or "upload"  # one line


def from_uploads(files: list[tuple[str, bytes]], dataset: str, shape: tuple[int, ...],
                 max_instances: int) -> list[Example]:
    """Uploaded (file name, bytes): images decoded, or series files (.tsv/.csv/.npy) read row by row."""
    if not files:
        raise BadRequest(400, "the multipart body has no `file` field; upload each input as a field named file "
                              "(curl -F file=@image.png)")
    examples, pixels = [], PixelAllowance(MAX_REQUEST_PIXELS)
    for name, data in files:
        read = _image(name, data, dataset, shape, pixels) if dataset in PIXELS else _series_file(name, data, shape)
        if not read:
            raise BadRequest(422, f"{name}: holds no series")
        examples += read
        _check_count(len(examples), max_instances)
    return examples


def from_image_body(data: bytes, dataset: str, shape: tuple[int, ...]) -> list[Example]:
    if dataset not in PIXELS:
        raise BadRequest(415, "this run reads series, not images: send JSON {\"instances\": [[...], ...]} or "
                              "upload a .tsv/.csv/.npy file")
    return _image("body", data, dataset, shape, PixelAllowance(MAX_REQUEST_PIXELS))


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
    pixels = PixelAllowance(MAX_REQUEST_PIXELS)
    return [_instance(f"instances[{i}]", item, dataset, shape, pixels) for i, item in enumerate(instances)]


def _instance(name: str, item: Any, dataset: str, shape: tuple[int, ...], pixels: PixelAllowance) -> Example:
    if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
        if dataset not in PIXELS:
            raise BadRequest(422, f"{name}: this run reads series, given as arrays of {shape[0]} numbers, not b64 "
                                  f"images")
        try:
            data = base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(422, f"{name}: b64 is not base64 text") from None
        return _image(name, data, dataset, shape, pixels)[0]
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


class PixelAllowance:
    """The pixels one request may have decoded, taken image by image from each header before decoding, so a
    request of many large images (each within the 40-megapixel cap) cannot cost seconds of decoding."""

    def __init__(self, pixels: int):
        self.left = pixels

    def take(self, name: str, data: bytes) -> None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:  # the header only
                width, height = image.size
        except Image.DecompressionBombError:
            width = height = MAX_IMAGE_PIXELS
        except (OSError, ValueError, SyntaxError):  # not an image: the decoder says so, in predict's words
            return
        check_pixels(width, height)
        self.left -= width * height
        if self.left < 0:
            raise BadRequest(413, f"{name}: the request's images hold more than "
                                  f"{MAX_REQUEST_PIXELS // 1_000_000} megapixels in all; send fewer or smaller "
                                  f"images per request")


def _image(name: str, data: bytes, dataset: str, shape: tuple[int, ...], pixels: PixelAllowance) -> list[Example]:
    try:
        pixels.take(name, data)
        return [Example(name, PIXELS[dataset](data, shape))]
    except (InputFailure, CnnzooError) as exc:
        raise BadRequest(422, f"{name}: {exc}") from None


def _series_file(name: str, data: bytes, shape: tuple[int, ...]) -> list[Example]:
    """The upload written to a private temporary file with its suffix, then read as predict reads that file."""
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="cnnzoo-serve-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in SERIES_SUFFIXES else '.upload'}"  # read_series refuses
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

