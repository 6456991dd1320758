"""predict and export print user-made names (files, class folders) as text: a class folder called `[red]x`
or a file with an escape sequence is shown as written, never read as rich markup or sent to the terminal."""

from __future__ import annotations

import io

from cnnzoo.deploy.export import export_title, render_export
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


def test_export_report_title_shows_the_path_as_written_on_one_line(tmp_path):
    report = {"file": "out/[red]model.tflite\x1b[2J", "runtime": "LiteRT interpreter", "agreement": 1.0,
              "samples": 8, "threshold": 1.0, "max_abs_diff": 1e-7, "size_bytes": 2**20, "latency_ms_per_sample": 0.5}
    assert export_title(report) == "out/[red]model.tflite\\x1b[2J (LiteRT interpreter)"
    assert "top-1 agreement" in _text(render_export(report))
    long = "runs/" + "x" * 150 + "/export/tflite/model.tflite"  # the CLI prints the title unwrapped, as here
    narrow = io.StringIO()
    console(file=narrow, width=60, color_system=None).print(export_title(report | {"file": long}), soft_wrap=True,
                                                           markup=False, highlight=False)
    assert long in narrow.getvalue()


def test_csv_outputs_quote_formulas_and_escape_control_characters(tmp_path):
    import csv

    from cnnzoo.deploy.predict import predictions_csv
    from cnnzoo.evaluation.class_metrics import write_confusion_csv

    result = PredictResult([{"file": "=HYPERLINK(\"http://e\")", "top": [{"class": "+cmd", "probability": 0.5}]},
                            {"file": "b\x1b[2J.png", "error": "@bad"}], 1, 1, 0.1)
    rows = list(csv.reader(predictions_csv(result, tmp_path / "p.csv", 1).open()))
    assert rows[1][:2] == ["'=HYPERLINK(\"http://e\")", "'+cmd"] and rows[2][0] == "b\\x1b[2J.png"
    assert rows[2][-1] == "'@bad"
    import numpy as np

    matrix = write_confusion_csv(np.eye(2, dtype=int), ["-neg", "-1.5"], tmp_path / "cm.csv").read_text()
    assert "'-neg" in matrix and ",-1.5" in matrix  # a negative number stays a number
