"""predict and export print user-made names (files, class folders) as text: a class folder called `[red]x`
or a file with an escape sequence is shown as written, never read as rich markup or sent to the terminal."""

from __future__ import annotations

import io

from cnnzoo.deploy.export import render_export
from cnnzoo.deploy.predict import PredictResult, render_predictions, report_outcome
from cnnzoo.terminal import console

ODD_CLASS, ODD_FILE = "[red]x", "img[bold].png\x1b[2J"


def _text(renderable) -> str:
    buffer = io.StringIO()
    console(file=buffer, width=200, color_system=None).print(renderable)
    return buffer.getvalue()


def test_prediction_table_shows_class_and_file_names_as_written():
    result = PredictResult([{"file": ODD_FILE, "top": [{"class": ODD_CLASS, "probability": 0.75}]}], 1, 0, 0.1)
    text = _text(render_predictions(result, 1))
    assert "[red]x (0.750)" in text
    assert "img[bold].png\\x1b[2J" in text and "\x1b" not in text


def test_failed_inputs_on_stderr_show_the_file_name_as_written():
    buffer = io.StringIO()
    result = PredictResult([{"file": ODD_FILE, "error": "not an image [x]"}], 0, 1, 0.0)
    report_outcome(result, console(file=buffer, width=200, color_system=None))
    assert "img[bold].png\\x1b[2J: not an image [x]" in buffer.getvalue()


def test_export_report_title_shows_the_path_as_written():
    report = {"file": "out/[red]model.tflite", "runtime": "LiteRT interpreter", "agreement": 1.0, "samples": 8,
              "threshold": 1.0, "max_abs_diff": 1e-7, "size_bytes": 2**20, "latency_ms_per_sample": 0.5}
    assert "out/[red]model.tflite (LiteRT interpreter)" in _text(render_export(report))
