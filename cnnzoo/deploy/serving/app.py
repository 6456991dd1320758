"""The FastAPI application of `cnnzoo serve`: POST /predict, GET /health, /metadata and /metrics, and the
OpenAPI page FastAPI writes (/docs).

Imported only by `cnnzoo serve` (FastAPI reads the endpoints' annotations, so its names are imported here at
the top). Every error a client sees is `{"error": "<one line>"}` with a 4xx status for its own mistakes; anything
else is a 500 whose details go to the server's log only, never a traceback to the client.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from functools import partial

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from cnnzoo.deploy.predict import top_classes
from cnnzoo.deploy.serving.batching import Batcher
from cnnzoo.deploy.serving.metrics import BodyTooLarge, ServeMetrics
from cnnzoo.deploy.serving.predictor import Predictor
from cnnzoo.deploy.serving.request_inputs import BadRequest, from_image_body, from_json, from_uploads, instances_in

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


@dataclass(frozen=True)
class Limits:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = 16 * 2**20
    max_instances: int = 64
    top_k: int = 3


def create_app(predictor: Predictor, limits: Limits, metrics: ServeMetrics):
    batcher = Batcher(predictor.probabilities, limits.max_batch, limits.max_wait_ms / 1000, metrics.batch)

    @asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        await batcher.run_in_model_thread(predictor.warm_up, (1, limits.max_batch))
        yield
        await batcher.stop()

    app = FastAPI(title=f"cnnzoo serve: {predictor.metadata.get('config')}", lifespan=lifespan,
                  description="A cnnzoo run's model; POST inputs to /predict for their most probable classes.")
    error = lambda status, reason: JSONResponse({"error": reason}, status)  # noqa: E731
    app.add_exception_handler(BadRequest, lambda _r, exc: error(exc.status, str(exc)))
    # the rest of the body is never read: the connection closes after the answer
    app.add_exception_handler(BodyTooLarge, lambda _r, exc: JSONResponse({"error": str(exc)}, 413,
                                                                         headers={"connection": "close"}))
    app.add_exception_handler(HTTPException, lambda _r, exc: error(exc.status_code, str(exc.detail)))
    app.add_exception_handler(RequestValidationError, lambda _r, exc: error(422, _validation_reason(exc)))

    # uvicorn logs the traceback of anything else; the client learns only that it happened
    app.add_exception_handler(Exception, lambda _r, _exc: error(500, "internal error while predicting; the "
                                                                      "server's log has the details"))
    views = {"tta": predictor.tta} if predictor.tta != "none" else {}

    @app.post("/predict", openapi_extra={"requestBody": REQUEST_BODY})
    async def predict(request: Request, top_k: int = Query(limits.top_k, ge=1, description="Classes per input.")):
        """The top-k classes of each input, as `cnnzoo predict --json` prints them."""
        with batcher.reading():
            examples = await run_in_threadpool(await _parser(request, predictor, limits))
        probabilities = await batcher.predict(instances_in(examples))
        tops = top_classes(probabilities, predictor.class_names, top_k)
        return JSONResponse({"predictions": [{"file": e.name, "top": t} | views for e, t in zip(examples, tops)]})

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


async def _parser(request, predictor: Predictor, limits: Limits):
    """The body read (bounded by the limits), and the function that decodes it, to run off the event loop."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    dataset, shape = predictor.dataset, predictor.input_shape
    if media == "multipart/form-data":
        form = await request.form(max_files=limits.max_instances, max_fields=limits.max_instances)
        fields = form.getlist("file")
        if any(not isinstance(f, UploadFile) for f in fields):
            raise BadRequest(400, "the `file` field must be an uploaded file (curl -F file=@image.png), not text")
        uploads = [(f.filename or "upload", await f.read()) for f in fields]
        return partial(from_uploads, uploads, dataset, shape, limits.max_instances)
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
