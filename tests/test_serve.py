"""`cnnzoo serve`: the real server in its own process on a free loopback port, spoken to over HTTP.

Uploads and JSON instances get `cnnzoo predict`'s classes and probabilities; every kind of bad request is a
4xx with a one-line reason and the server goes on serving; concurrent requests share model calls; /metadata
and /metrics say what the run and the service did; SIGTERM lets a request in flight finish."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_fixtures import REPO, saved_run, train_run_folder
from typer.testing import CliRunner

from cnnzoo.cli import app

pytest.importorskip("fastapi")  # the serve extra (part of the test extra)


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory, generated_data_dir) -> Path:
    return train_run_folder(tmp_path_factory.mktemp("runs"), "lenet", generated_data_dir,
                            ["data.limit=2000", "train.batch_size=64"])


@contextlib.contextmanager
def server(run: Path, *options: str, data_dir: Path | None = None):
    """`cnnzoo serve RUN --port 0` in a subprocess until it says where it listens; yields (port, process) and
    stops it with SIGTERM. Its output goes to a file, `process.log` (a pipe nobody reads would fill up and
    stall the server)."""
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    handle, name = tempfile.mkstemp(prefix="cnnzoo-serve-", suffix=".log")
    log = Path(name)
    process = subprocess.Popen([sys.executable, "-m", "cnnzoo", "serve", str(run), "--port", "0", *extra, *options],
                               stdout=handle, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": str(REPO)})
    os.close(handle)
    process.log = log
    try:
        deadline = time.monotonic() + 120
        while not (ready := re.search(r"on http://127\.0\.0\.1:(\d+) ", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not say where it listens within 120 s"
            time.sleep(0.2)
        port = int(ready.group(1))
        assert request(port, "GET", "/health")[0] == 200
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        log.unlink(missing_ok=True)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def multipart(files: list[tuple[str, bytes]], field: str = "file") -> tuple[bytes, dict]:
    boundary = "cnnzoo-test-boundary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_files(port: int, files: list[tuple[str, bytes]], query: str = "") -> tuple[int, dict]:
    body, headers = multipart(files)
    status, answer = request(port, "POST", f"/predict{query}", body, headers)
    return status, json.loads(answer)


def post_json(port: int, document, query: str = "") -> tuple[int, dict]:
    status, answer = request(port, "POST", f"/predict{query}", json.dumps(document).encode(),
                             {"Content-Type": "application/json"})
    return status, json.loads(answer)


def distributions(entries: list[dict]) -> list[dict[str, float]]:
    return [{t["class"]: t["probability"] for t in entry["top"]} for entry in entries]


def assert_same(got: list[dict], expected: list[dict]) -> None:
    """Same classes in the same order, probabilities equal to float32 rounding (batches differ in size)."""
    assert len(got) == len(expected)
    for mine, theirs in zip(distributions(got), distributions(expected)):
        assert list(mine) == list(theirs)
        np.testing.assert_allclose(list(mine.values()), list(theirs.values()), atol=1e-6)


@pytest.fixture(scope="module")
def digits(tmp_path_factory, generated_data_dir) -> list[Path]:
    """Test digits of the generated MNIST as PNG files, and one as a colour JPEG of another size."""
    folder = tmp_path_factory.mktemp("digits")
    with np.load(generated_data_dir / "mnist.npz") as arrays:
        images = arrays["x_test"][:6]
    paths = []
    for i, image in enumerate(images[:5]):
        Image.fromarray(image).save(folder / f"{i}.png")
        paths.append(folder / f"{i}.png")
    Image.fromarray(np.repeat(images[5][..., None], 3, axis=2)).resize((40, 36)).save(folder / "colour.jpg")
    return paths + [folder / "colour.jpg"]


@pytest.fixture(scope="module")
def lenet_server(lenet_run, generated_data_dir):
    with server(lenet_run, "--max-wait-ms", "200", data_dir=generated_data_dir) as (port, process):
        yield port


def predicted(run: Path, files: list[Path], data_dir: Path) -> list[dict]:
    result = CliRunner().invoke(app, ["predict", str(run), *map(str, files), "--json", "--top-k", "10",
                                      "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_uploads_json_and_raw_bodies_get_predicts_answer(lenet_run, lenet_server, digits, generated_data_dir):
    expected = predicted(lenet_run, digits, generated_data_dir)
    assert max(e["top"][0]["probability"] for e in expected) > 0.5  # a trained model: peaked probabilities

    status, answer = post_files(lenet_server, [(p.name, p.read_bytes()) for p in digits], "?top_k=10")
    assert status == 200, answer
    assert [e["file"] for e in answer["predictions"]] == [p.name for p in digits]
    assert_same(answer["predictions"], expected)

    encoded = [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in digits]
    status, answer = post_json(lenet_server, {"instances": encoded}, "?top_k=10")
    assert status == 200 and [e["file"] for e in answer["predictions"]][:2] == ["instances[0]", "instances[1]"]
    assert_same(answer["predictions"], expected)

    pixels = np.asarray(Image.open(digits[0])).tolist()  # raw 0-255 pixels, (28, 28) for one channel
    status, answer = post_json(lenet_server, {"instances": [pixels]}, "?top_k=10")
    assert status == 200
    assert_same(answer["predictions"], expected[:1])

    status, body = request(lenet_server, "POST", "/predict", digits[1].read_bytes(), {"Content-Type": "image/png"})
    assert status == 200
    top = json.loads(body)["predictions"][0]["top"]
    assert len(top) == 3 and top[0]["class"] == expected[1]["top"][0]["class"]  # the default --top-k


def bad_requests(good_png: bytes) -> list[tuple[str, int, bytes, dict]]:
    """(what, expected status, body, headers): one of each mistake a client makes."""
    truncated, _ = multipart([("cut.png", good_png[: len(good_png) // 2])])
    not_image, _ = multipart([("notes.png", b"this is not an image\n")])
    buffer = io.BytesIO()
    Image.new("L", (8000, 8000)).save(buffer, format="PNG")  # 64 megapixels in about 60 KB
    bomb_body, _ = multipart([("bomb.png", buffer.getvalue())])
    buffer = io.BytesIO()
    Image.new("L", (6000, 6000)).save(buffer, format="PNG")  # 36 megapixels: alone within the cap, not thrice
    large = buffer.getvalue()
    boundary = {"Content-Type": "multipart/form-data; boundary=cnnzoo-test-boundary"}
    json_type = {"Content-Type": "application/json"}
    no_file, _ = multipart([("x.png", good_png)], field="image")
    return [
        ("truncated image", 422, truncated, boundary),
        ("not an image", 422, not_image, boundary),
        ("decompression bomb", 422, bomb_body, boundary),
        ("no file field", 400, no_file, boundary),
        ("wrong content type", 415, b"hello", {"Content-Type": "text/plain"}),
        ("broken JSON", 400, b"{\"instances\": [", json_type),
        ("JSON without instances", 400, b"{\"inputs\": []}", json_type),
        ("wrong shape", 422, json.dumps({"instances": [[1, 2, 3]]}).encode(), json_type),
        ("pixels out of range", 422, json.dumps({"instances": [[[300] * 28] * 28]}).encode(), json_type),
        ("ragged array", 422, json.dumps({"instances": [[[1, 2], [3]]]}).encode(), json_type),
        ("booleans as pixels", 422, json.dumps({"instances": [[[True] * 28] * 28]}).encode(), json_type),
        ("bad base64", 422, json.dumps({"instances": [{"b64": "not base64!"}]}).encode(), json_type),
        ("deep nesting", 400, b"[" * 50_000, json_type),
        ("too many inputs", 413, json.dumps({"instances": [{"b64": ""}] * 65}).encode(), json_type),
        ("too many files", 413, multipart([("x.png", good_png)] * 65)[0], boundary),
        ("multipart without boundary", 400, truncated, {"Content-Type": "multipart/form-data"}),
        ("multipart cut off", 400, multipart([("x.png", good_png)])[0].rsplit(b"--cnnzoo", 1)[0], boundary),
        ("images too large together", 413, multipart([("big.png", large)] * 3)[0], boundary),
    ]


def oversized(port: int, chunked: bool) -> bytes:
    """A 17 MiB body (the limit is 16 MiB) announced by Content-Length, or sent in 1 MiB chunks without one,
    each chunk only once the server has not answered yet: it answers as soon as the limit is passed."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {17 * 2**20}"
    connection.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
                       .encode())
    chunk = f"{2**20:x}\r\n".encode() + b"0" * 2**20 + b"\r\n"
    for _ in range(17 if chunked else 0):
        if select.select([connection], [], [], 0.2)[0]:
            break
        connection.sendall(chunk)
    answer = b""
    with contextlib.suppress(ConnectionResetError):  # the unread rest of the body resets the connection
        while data := connection.recv(65536):
            answer += data
    connection.close()
    return answer


def test_bad_requests_get_a_4xx_reason_and_the_server_keeps_serving(lenet_server, digits):
    good = digits[0].read_bytes()
    for what, expected, body, headers in bad_requests(good):
        status, answer = request(lenet_server, "POST", "/predict", body, headers)
        assert status == expected, (what, status, answer)
        reason = json.loads(answer)["error"]
        assert reason and "\n" not in reason and "Traceback" not in reason, (what, reason)
        assert post_files(lenet_server, [("ok.png", good)])[0] == 200, f"after {what}"
    for chunked in (False, True):
        answer = oversized(lenet_server, chunked)
        assert answer.startswith(b"HTTP/1.1 413") and b"--max-body-mb" in answer, answer[:300]
        assert post_files(lenet_server, [("ok.png", good)])[0] == 200
    assert request(lenet_server, "GET", "/nowhere")[0] == 404
    assert request(lenet_server, "GET", "/predict")[0] == 405
    status, answer = post_files(lenet_server, [("ok.png", good)], "?top_k=zero")
    assert status == 422 and "top_k" in answer["error"]


def test_concurrent_requests_share_model_calls(lenet_server, digits):
    before = model_calls(lenet_server)
    good = [(p.name, p.read_bytes()) for p in digits[:1]]
    alone = post_files(lenet_server, good)[1]["predictions"]
    start, answers = threading.Barrier(16), []

    def client():
        start.wait()
        answers.append(post_files(lenet_server, good))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 200 for status, _ in answers)
    for _, answer in answers:
        assert_same(answer["predictions"], alone)
    calls, inputs = np.subtract(model_calls(lenet_server), before)
    assert inputs == 17 and calls < 17  # the 16 concurrent requests did not take one call each


def model_calls(port: int) -> tuple[float, float]:
    """(model calls, inputs predicted) so far, read from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = request(port, "GET", "/metrics")
    assert status == 200
    samples = {s.name: s.value for family in text_string_to_metric_families(body.decode())
               for s in family.samples if not s.labels or set(s.labels) == {"le"} and s.labels["le"] == "+Inf"}
    return samples["cnnzoo_batch_size_count"], samples["cnnzoo_inputs_total"]


def test_metadata_and_metrics(lenet_run, lenet_server, digits):
    status, body = request(lenet_server, "GET", "/metadata")
    metadata = json.loads(body)
    assert status == 200 and metadata["config"] == "lenet" and metadata["input_shape"] == [28, 28, 1]
    assert metadata["classes"] == [str(i) for i in range(10)]
    assert (metadata["run"], metadata["checkpoint"]) == (lenet_run.name, "best.keras")  # names, not paths
    recorded = json.loads((lenet_run / "metrics.json").read_text())["test"]
    assert metadata["test_metrics"] == recorded and "accuracy" in recorded
    assert metadata["limits"]["max_batch"] == 32

    post_files(lenet_server, [("ok.png", digits[0].read_bytes())])
    request(lenet_server, "POST", "/predict", b"x", {"Content-Type": "text/plain"})
    status, body = request(lenet_server, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert 'cnnzoo_requests_total{path="/predict",status="200"}' in text
    assert 'cnnzoo_request_errors_total{path="/predict",status="415"}' in text
    assert "cnnzoo_request_seconds_bucket" in text and "cnnzoo_model_seconds_count" in text
    request(lenet_server, "GET", "/a/path/of/the/clients/choice")
    assert "/a/path" not in request(lenet_server, "GET", "/metrics")[1].decode()  # counted as "other"
    assert request(lenet_server, "GET", "/docs")[0] == 200
    assert "/predict" in json.loads(request(lenet_server, "GET", "/openapi.json")[1])["paths"]


def test_sigterm_answers_the_request_in_flight_then_exits_0(lenet_run, digits, generated_data_dir):
    body, headers = multipart([("late.png", digits[0].read_bytes())])
    with server(lenet_run, data_dir=generated_data_dir) as (port, process):
        connection = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers | {"Content-Length": len(body)}).items())
        connection.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body[:100])
        time.sleep(0.5)  # the request has begun: its headers are read, its body is not complete
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        connection.sendall(body[100:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        connection.close()
        process.wait(timeout=60)
        err = process.log.read_text()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"late.png" in answer
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_serves_an_exported_tflite_file_as_the_checkpoint(lenet_run, digits, generated_data_dir):
    result = CliRunner().invoke(app, ["export", str(lenet_run), "--format", "tflite", "--json",
                                      "--data-dir", str(generated_data_dir)])
    assert result.exit_code == 0, result.output
    exported = Path(json.loads(result.stdout)["file"])
    expected = predicted(lenet_run, digits, generated_data_dir)
    with server(lenet_run, "--export", str(exported), data_dir=generated_data_dir) as (port, _):
        alone = post_files(port, [(digits[0].name, digits[0].read_bytes())], "?top_k=10")  # after the warm-up's 32
        status, answer = post_files(port, [(p.name, p.read_bytes()) for p in digits], "?top_k=10")
        again = post_files(port, [(digits[0].name, digits[0].read_bytes())], "?top_k=10")
        metadata = json.loads(request(port, "GET", "/metadata")[1])
    assert status == 200 and metadata["export_format"] == "tflite"
    assert alone[0] == again[0] == 200 and alone[1] == again[1]  # the interpreter resized to each batch
    for mine, theirs in zip(distributions(answer["predictions"]), distributions(expected)):
        assert next(iter(mine)) == next(iter(theirs))
        np.testing.assert_allclose([mine[c] for c in theirs], list(theirs.values()), atol=1e-2)  # LiteRT's kernels


def test_series_run_reads_json_arrays_and_uploaded_tsv(tmp_path, generated_data_dir):
    run = saved_run(tmp_path / "run", REPO / "configs" / "cnn1d.yaml")
    rows = np.loadtxt(generated_data_dir / "ucr" / "FordA" / "FordA_TEST.tsv", max_rows=3)
    np.savetxt(tmp_path / "rows.tsv", rows, delimiter="\t")
    expected = predicted(run, [tmp_path / "rows.tsv"], generated_data_dir)
    with server(run, data_dir=generated_data_dir) as (port, _):
        status, by_file = post_files(port, [("rows.tsv", (tmp_path / "rows.tsv").read_bytes())], "?top_k=10")
        _, by_json = post_json(port, {"instances": rows[:, 1:].tolist()}, "?top_k=10")
        refused = post_json(port, {"instances": [{"b64": "aGVsbG8="}]})[0]
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((0, rows.shape[1] - 1), np.float32))
        empty = post_files(port, [("none.npy", buffer.getvalue())])
    assert status == 200 and [e["file"] for e in by_file["predictions"]] == ["rows.tsv:1", "rows.tsv:2", "rows.tsv:3"]
    assert_same(by_file["predictions"], expected)
    assert_same(by_json["predictions"], expected)
    assert refused == 422
    assert empty[0] == 422 and "none.npy" in empty[1]["error"]


def test_a_host_that_is_not_an_address_is_one_clear_error(lenet_run):
    result = CliRunner().invoke(app, ["serve", str(lenet_run), "--host", "no-such-host.invalid", "--port", "0"])
    assert result.exit_code == 2 and "--host no-such-host.invalid: is not an address" in result.output


def test_a_port_in_use_is_one_clear_error(lenet_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(lenet_run), "--port", str(port)])
    assert result.exit_code == 2
    assert f"--port {port}: cannot listen there" in result.output and "Traceback" not in result.output


def test_an_export_without_its_verification_report_is_refused(lenet_run, tmp_path):
    missing = CliRunner().invoke(app, ["serve", str(lenet_run), "--port", "0", "--export", str(tmp_path / "no.tflite")])
    assert missing.exit_code == 2 and "no.tflite: no such file" in missing.output
    stray = tmp_path / "model.tflite"
    stray.write_bytes(b"not verified")
    result = CliRunner().invoke(app, ["serve", str(lenet_run), "--port", "0", "--export", str(stray)])
    assert result.exit_code == 2 and "no readable export.json beside it" in result.output
    (tmp_path / "export.json").write_text(json.dumps({"format": "tflite", "passed": True, "file": "other.tflite",
                                                      "input": {"dtype": "float32"}}))
    result = CliRunner().invoke(app, ["serve", str(lenet_run), "--port", "0", "--export", str(stray)])
    assert result.exit_code == 2 and "describes other.tflite" in result.output


def test_a_stalled_upload_gets_408_and_holds_nobody_back(lenet_run, digits, generated_data_dir):
    good = [(digits[0].name, digits[0].read_bytes())]
    with server(lenet_run, "--read-timeout", "2", "--max-wait-ms", "1000", data_dir=generated_data_dir) as (port, _):
        stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                        b"Content-Length: 1000\r\n\r\nab")
        started = time.perf_counter()
        assert post_files(port, good)[0] == 200
        assert time.perf_counter() - started < 0.9  # not held for the 1 s wait: the stalled body is not "incoming"
        answer = b""
        while data := stalled.recv(65536):  # the server closes the connection: the rest is never read
            answer += data
        stalled.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer


def test_a_client_that_goes_away_is_counted_not_logged(lenet_run, digits, generated_data_dir):
    with server(lenet_run, data_dir=generated_data_dir) as (port, process):
        for _ in range(3):
            gone = socket.create_connection(("127.0.0.1", port), timeout=30)
            gone.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 1000\r\n\r\nab")
            time.sleep(0.2)
            gone.close()
        time.sleep(0.5)
        metrics = request(port, "GET", "/metrics")[1].decode()
        assert post_files(port, [(digits[0].name, digits[0].read_bytes())])[0] == 200
        log = process.log.read_text()
    assert 'cnnzoo_requests_total{path="/predict",status="499"} 3.0' in metrics
    assert "Traceback" not in log


def test_file_names_are_answered_with_control_characters_escaped(lenet_server, digits):
    status, answer = post_files(lenet_server, [("a\x1b[31mred\n.png", digits[0].read_bytes())])
    assert status == 200 and answer["predictions"][0]["file"] == "a\\x1b[31mred\\n.png"
