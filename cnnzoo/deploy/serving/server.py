"""uvicorn serving the application on a socket bound first (a port in use is a clear error, port 0 a free
port that is printed), with uvloop and httptools where installed.

On SIGTERM or Ctrl-C uvicorn stops accepting, lets the requests in flight finish (up to
`graceful_seconds`), then the batcher stops and the process exits 0."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Callable

from cnnzoo.deploy.serving.app import Limits, create_app
from cnnzoo.deploy.serving.metrics import Guarded, ServeMetrics
from cnnzoo.deploy.serving.predictor import Predictor
from cnnzoo.errors import RunError


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"   # as given (the socket from `bind` holds the address and port)
    max_connections: int = 256   # beyond them, uvicorn answers 503
    graceful_seconds: int = 30
    access_log: bool = False


def serve(predictor: Predictor, limits: Limits, listen: Listen, sock: socket.socket,
          say: Callable[[str], None]) -> None:
    """Answer requests on `sock` (from `bind`) until SIGTERM or Ctrl-C."""
    import uvicorn

    metrics = ServeMetrics(limits.max_batch)
    app = Guarded(create_app(predictor, limits, metrics), limits.max_body_bytes, metrics)
    config = uvicorn.Config(app, log_level="info", access_log=listen.access_log, lifespan="on",
                            limit_concurrency=listen.max_connections, timeout_graceful_shutdown=listen.graceful_seconds,
                            server_header=False, proxy_headers=False)
    host, port = sock.getsockname()[:2]
    address = f"[{host}]" if ":" in host else host
    if not is_loopback(listen.host):
        say(f"warning: listening on {listen.host}, reachable from other machines; the service has no "
            f"authentication, so put it behind a proxy that has")
    ready = (f"serving {predictor.metadata.get('config')} on http://{address}:{port} (POST /predict; API page "
             f"http://{address}:{port}/docs); Ctrl-C or SIGTERM stops it")
    server = _server_class(uvicorn.Server)(config, on_ready=lambda: say(ready))
    server.run(sockets=[sock])
    if not server.started:
        raise RunError("the server did not start; the messages above say why.")


def _server_class(base: type) -> type:
    class Server(base):
        """uvicorn's server, except that it says when it listens (after the model's warm-up), and that after the
        graceful shutdown a SIGTERM or Ctrl-C is not raised again (uvicorn does, to die of it): the command ends
        with exit code 0, and Ctrl-C prints no traceback."""

        def __init__(self, config, on_ready: Callable[[], None]):
            super().__init__(config)
            self.on_ready = on_ready

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                self.on_ready()

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads: a port in use is said at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise RunError(f"--host {host}: is not an address of this machine ({getattr(exc, 'strerror', None) or exc}); "
                       f"give an IP address or a host name, e.g. --host 127.0.0.1 (this machine only) or "
                       f"--host 0.0.0.0 (every interface).") from None
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # the port is ours from now on, while the model loads (uvicorn's own backlog)
    except OSError as exc:
        raise RunError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); choose another "
                       f"--port (0 picks a free one) or stop what holds it.") from None
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
