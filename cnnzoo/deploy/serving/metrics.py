"""The service's Prometheus metrics (GET /metrics), in a registry of its own, and the ASGI wrapper that
counts every request and enforces the body limits before the application reads a byte too many.

The `path` label takes only the service's own paths (anything else counts as "other"), so no client can
grow the label set, and with it the server's memory."""

from __future__ import annotations

import json
import time

PATHS = ("/predict", "/health", "/metadata", "/metrics", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    def __init__(self, max_batch: int):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("cnnzoo_requests", "HTTP requests answered, by path and status code",
                                ["path", "status"], registry=self.registry)
        self.errors = Counter("cnnzoo_request_errors", "Requests answered with a 4xx or 5xx status, by path and "
                              "status code", ["path", "status"], registry=self.registry)
        self.latency = Histogram("cnnzoo_request_seconds", "Seconds from the request's arrival to its answer",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("cnnzoo_requests_in_flight", "Requests being answered", registry=self.registry)
        self.batch_size = Histogram("cnnzoo_batch_size", "Inputs per model call",
                                    buckets=_powers_of_two(max_batch), registry=self.registry)
        self.model_seconds = Histogram("cnnzoo_model_seconds", "Seconds per model call (all views of a batch)",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inputs = Counter("cnnzoo_inputs", "Inputs predicted", registry=self.registry)

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.model_seconds.observe(seconds)
        self.inputs.inc(size)

    def answered(self, path: str, status: int, seconds: float) -> None:
        path = path if path in PATHS else "other"
        self.requests.labels(path, str(status)).inc()
        if status >= 400:
            self.errors.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RefusedBody(Exception):
    """A body refused while it is read (the application answers it with `status`, app.py); the rest of it is
    never read, so the connection closes after the answer."""

    status = 413


class BodyTooLarge(RefusedBody):
    def __init__(self, max_body: int):
        super().__init__(f"the request body is larger than the {max_body:,} bytes this server accepts "
                         f"(--max-body-mb); send fewer or smaller inputs")


class BodyTimeout(RefusedBody):
    status = 408

    def __init__(self, seconds: float):
        super().__init__(f"the request body did not arrive within {seconds:g} s (--read-timeout)")


class ServerBusy(RefusedBody):
    status = 503

    def __init__(self, held: int):
        super().__init__(f"the server already holds {held:,} bytes of request bodies being read or decoded; "
                         f"retry in a moment")


class Guarded:
    """ASGI wrapper: a body over `max_body` bytes is refused with 413 (by its Content-Length before it is
    read, else as soon as the bytes received pass the limit), a body that would take the bodies held at once
    past `max_held` bytes with 503; every request is timed and counted."""

    def __init__(self, app, max_body: int, metrics: ServeMetrics):
        self.app, self.max_body, self.metrics = app, max_body, metrics
        self.max_held, self.held = 16 * max_body, 0  # bytes of the bodies of all requests in flight

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status, received = time.perf_counter(), None, 0  # status: None until the answer starts
        declared = _content_length(scope)

        async def limited_receive():
            nonlocal received
            message = await receive()
            size = len(message.get("body", b""))
            received += size
            self.held += size
            if received > self.max_body:
                raise BodyTooLarge(self.max_body)
            if self.held > self.max_held:
                raise ServerBusy(self.held)
            return message

        async def noted_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            if declared is not None and declared > self.max_body:
                await self._refuse(noted_send, BodyTooLarge(self.max_body))
            else:
                await self.app(scope, limited_receive, noted_send)
        except RefusedBody as exc:  # raised outside the application's handlers (it answers the rest itself)
            if status is None:
                await self._refuse(noted_send, exc)
        finally:
            self.held -= received
            self.metrics.in_flight.dec()
            self.metrics.answered(scope["path"], status or 500, time.perf_counter() - started)

    @staticmethod
    async def _refuse(send, exc: RefusedBody) -> None:
        body = json.dumps({"error": str(exc)}, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": exc.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _powers_of_two(limit: int) -> tuple[float, ...]:
    buckets, size = [], 1
    while size < limit:
        buckets.append(float(size))
        size *= 2
    return (*buckets, float(limit))
