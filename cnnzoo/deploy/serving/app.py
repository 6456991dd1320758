"""The FastAPI application of `cnnzoo serve`: POST /predict, GET /health, /metadata and /metrics, and the
OpenAPI page FastAPI writes (/docs).

Imported only by `cnnzoo serve` (FastAPI reads the endpoints' annotations, so its names are imported here at
the top). Every error a client sees is `{"error": "<one line>"}` with a 4xx status for its own mistakes; anything
else is a 500 whose details go to the server's log only, never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from functools import partial

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from cnnzoo.deploy.predict import top_classes
from cnnzoo.deploy.serving.batching import Batcher, ServerStopping
from cnnzoo.deploy.serving.metrics import BodyTimeout, RefusedBody, ServeMetrics
from cnnzoo.deploy.serving.predictor import Predictor
from cnnzoo.deploy.serving.request_inputs import BadRequest, from_image_body, from_json, from_multipart, read_batch

REQUEST_BODY = {  # the OpenAPI description of what POST /predict reads (the endpoint parses the body itself)
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {"type": "object", "required": ["instances"], "properties": {
            "instances": {"type": "array", "items": {}, "description": "each {\"b64\": \"<base64 image file>\"} or "
                          "an array of the input's shape (0-255 pixels, or a series)"}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


ERROR = {"content": {"application/json": {"schema": {"type": "object", "required": ["error"],
                                                     "properties": {"error": {"type": "string"}}}}}}
ERRORS = {  # what /predict answers instead of predictions (the OpenAPI page lists them)
    400: {"description": "a body that cannot be parsed: broken JSON, no instances, no `file` field"} | ERROR,
    413: {"description": "a body, or inputs per request, over the server's limits"} | ERROR,
    415: {"description": "a content type /predict does not read"} | ERROR,
    422: {"description": "an input that cannot be read: not an image, truncated, too many pixels, wrong shape"}
         | ERROR,
}


@dataclass(frozen=True)
class Limits:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = 16 * 2**20
    max_instances: int = 64
    top_k: int = 3
    read_seconds: float = 30.0  # for a request's body to arrive (a stalled upload is a 408, not a held slot)


def create_app(predictor: Predictor, limits: Limits, metrics: ServeMetrics):
    batcher = Batcher(predictor.probabilities, limits.max_batch, limits.max_wait_ms / 1000, metrics.batch)
    # requests are decoded off the event loop, as many at once as there are cores (Pillow releases the GIL)
    decoders = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="cnnzoo-decode")

    @asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        await batcher.run_in_model_thread(predictor.warm_up, (1, limits.max_batch))
        # TensorFlow and the model are millions of objects: a full collection among them stalls every request
        # for a fifth of a second; frozen, collections see only what requests allocate
        gc.collect()
        gc.freeze()
        yield
        await batcher.stop()
        decoders.shutdown(wait=False, cancel_futures=True)  # only after --graceful-seconds ran out is any left

    app = FastAPI(title=f"cnnzoo serve: {predictor.metadata.get('config')}", lifespan=lifespan,
                  description="A cnnzoo run's model; POST inputs to /predict for their most probable classes.")
    _answer_errors(app)
    views = {"tta": predictor.tta} if predictor.tta != "none" else {}

    @app.post("/predict", openapi_extra={"requestBody": REQUEST_BODY}, responses=ERRORS)
    async def predict(request: Request, top_k: int = Query(limits.top_k, ge=1, description="Classes per input.")):
        """The top-k classes of each input, as `cnnzoo predict --json` prints them."""
        try:
            parse = await asyncio.wait_for(_parser(request, predictor, limits), limits.read_seconds)
        except asyncio.TimeoutError:
            raise BodyTimeout(limits.read_seconds) from None
        with batcher.reading():
            names, inputs = await asyncio.get_running_loop().run_in_executor(decoders, read_batch, parse)
        tops = top_classes(await batcher.predict(inputs), predictor.class_names, top_k)
        return JSONResponse({"predictions": [{"file": name, "top": top} | views for name, top in zip(names, tops)]})

    @app.get("/health")
    async def health():
        """200 once the model is loaded and warmed up."""
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata():
        """The run behind the service: config, classes, input shape, checkpoint, test metrics, limits."""
        return predictor.metadata | {"limits": asdict(limits)}

    @app.get("/metrics")
    async def prometheus():
        """Requests, latencies, batch sizes and errors in the Prometheus text format."""
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type)

    return app


def _answer_errors(app) -> None:
    """Each error as {"error": "<one line>"}; the handlers are coroutines, so no error costs a thread hop."""

    def answer(kind: type, status, reason=str, headers=None) -> None:
        async def handler(_request, exc):
            return JSONResponse({"error": reason(exc)}, status if isinstance(status, int) else status(exc),
                                headers=headers)
        app.add_exception_handler(kind, handler)

    answer(BadRequest, lambda exc: exc.status)
    answer(RefusedBody, lambda exc: exc.status, headers={"connection": "close"})  # the rest is never read
    answer(ServerStopping, 503)
    answer(ClientDisconnect, 499, lambda _exc: "the client closed the connection")  # counted, never delivered
    answer(HTTPException, lambda exc: exc.status_code, lambda exc: str(exc.detail))
    answer(RequestValidationError, 422, _validation_reason)
    # anything else: uvicorn logs the traceback, the client learns only that it happened
    answer(Exception, 500, lambda _exc: "internal error while predicting; the server's log has the details")


async def _parser(request, predictor: Predictor, limits: Limits):
    """The body read (bounded by the limits), and the function that decodes it, to run off the event loop."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    dataset, shape = predictor.dataset, predictor.input_shape
    if media == "multipart/form-data":
        content_type = request.headers["content-type"]
        return partial(from_multipart, await request.body(), content_type, dataset, shape, limits.max_instances)
    if media == "application/json":
        return partial(from_json, await request.body(), dataset, shape, limits.max_instances)
    if media.startswith("image/"):
        return partial(from_image_body, await request.body(), dataset, shape)
    raise BadRequest(415, f"content type {media or 'none'!r} is not read here; send multipart/form-data (field "
                          f"`file`), application/json ({{\"instances\": [...]}}) or an image/* body")


def _validation_reason(exc) -> str:
    """FastAPI's list of validation errors as one line: where, and what."""
    parts = []
    for problem in exc.errors()[:3]:
        where = ".".join(str(p) for p in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"
