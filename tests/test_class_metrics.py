"""Classification metrics against hand-computed cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cnnzoo.evaluation.class_metrics import (averages, confusion_matrix, per_class_report, predictions_from_probs,
                                             top_k_accuracy, write_confusion_csv)

# Three classes, ten samples. Rows true, columns predicted:
#            pred 0  pred 1  pred 2
#   true 0      2       1       0      support 3
#   true 1      1       3       1      support 5
#   true 2      0       0       2      support 2
Y_TRUE = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 0, 1, 1, 1, 2, 2, 2]
CM = np.array([[2, 1, 0], [1, 3, 1], [0, 0, 2]])
NAMES = ["cat", "dog", "bird"]


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(cm, CM)
    assert cm.dtype.kind == "i"
    assert confusion_matrix([0, 1], [1, 1], 4).shape == (4, 4)  # classes never seen still get a row


def test_confusion_matrix_accepts_one_hot_and_rejects_bad_labels():
    one_hot = np.eye(3)[Y_TRUE]
    np.testing.assert_array_equal(confusion_matrix(one_hot, Y_PRED, 3), CM)
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 labels but y_pred has 3"):
        confusion_matrix([0, 1], [0, 1, 2], 3)


def test_per_class_report_known_three_class_case():
    report = per_class_report(CM, NAMES)
    # precision = diag / column sums (3, 4, 3); recall = diag / row sums (3, 5, 2)
    expected = [
        ("cat", 2 / 3, 2 / 3, 2 / 3, 3),
        ("dog", 3 / 4, 3 / 5, 2 * 0.75 * 0.6 / 1.35, 5),
        ("bird", 2 / 3, 1.0, 0.8, 2),
    ]
    for row, (name, p, r, f1, support) in zip(report, expected):
        assert row["name"] == name and row["support"] == support
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f1)
        assert all(type(row[k]) is float for k in ("precision", "recall", "f1"))
    assert type(report[0]["support"]) is int


def test_averages_known_three_class_case():
    result = averages(CM)
    f1_dog = 2 * 0.75 * 0.6 / 1.35
    assert result["accuracy"] == pytest.approx(7 / 10)
    assert result["macro_precision"] == pytest.approx((2 / 3 + 3 / 4 + 2 / 3) / 3)
    assert result["macro_recall"] == pytest.approx((2 / 3 + 3 / 5 + 1.0) / 3)
    assert result["macro_f1"] == pytest.approx((2 / 3 + f1_dog + 0.8) / 3)
    assert result["weighted_precision"] == pytest.approx((3 * 2 / 3 + 5 * 3 / 4 + 2 * 2 / 3) / 10)
    assert result["weighted_recall"] == pytest.approx(0.7)  # weighted recall equals accuracy
    assert result["weighted_f1"] == pytest.approx((3 * 2 / 3 + 5 * f1_dog + 2 * 0.8) / 10)


def test_perfect_classifier_gives_ones():
    labels = [0, 1, 2, 2, 1, 0, 3]
    cm = confusion_matrix(labels, labels, 4)
    assert all(row[k] == 1.0 for row in per_class_report(cm, list("abcd")) for k in ("precision", "recall", "f1"))
    assert set(averages(cm).values()) == {1.0}


def test_zero_division_gives_zero():
    # class 2 never occurs and is never predicted; class 1 is never predicted
    cm = confusion_matrix([0, 0, 1], [0, 0, 0], 3)
    report = per_class_report(cm, ["a", "b", "c"])
    assert report[1] == {"name": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report[2] == {"name": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report[0]["precision"] == pytest.approx(2 / 3) and report[0]["recall"] == 1.0
    empty = averages(np.zeros((2, 2), dtype=int))
    assert set(empty.values()) == {0.0}
    with pytest.raises(ValueError, match="2 class names for a 3-class"):
        per_class_report(cm, ["a", "b"])


def test_top_k_accuracy():
    probs = np.array([
        [0.5, 0.3, 0.2],  # true 0: top-1 hit
        [0.5, 0.3, 0.2],  # true 1: top-2 hit
        [0.5, 0.3, 0.2],  # true 2: top-3 hit
        [0.1, 0.2, 0.7],  # true 2: top-1 hit
    ])
    y_true = [0, 1, 2, 2]
    assert top_k_accuracy(y_true, probs, 1) == pytest.approx(0.5)
    assert top_k_accuracy(y_true, probs, 2) == pytest.approx(0.75)
    assert top_k_accuracy(y_true, probs, 3) == 1.0
    assert top_k_accuracy(y_true, probs, 5) == 1.0  # k larger than the number of classes
    assert top_k_accuracy(np.eye(3)[y_true], probs, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        top_k_accuracy([0, 1], probs, 1)


def test_predictions_from_softmax_and_sigmoid():
    np.testing.assert_array_equal(predictions_from_probs([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]), [1, 0])
    np.testing.assert_array_equal(predictions_from_probs([[0.2], [0.5], [0.9], [0.49]]), [0, 1, 1, 0])
    np.testing.assert_array_equal(predictions_from_probs(np.array([0.2, 0.8])), [0, 1])
    assert predictions_from_probs([[0.9]]).dtype.kind == "i"
    with pytest.raises(ValueError, match="shape"):
        predictions_from_probs(np.zeros((2, 2, 2)))


def test_write_confusion_csv(tmp_path):
    path = tmp_path / "confusion_matrix.csv"
    write_confusion_csv(CM, NAMES, path)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][1:] == NAMES
    assert [r[0] for r in rows[1:]] == NAMES
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=int), CM)
    assert [p.name for p in tmp_path.iterdir()] == ["confusion_matrix.csv"]
    with pytest.raises(ValueError):
        write_confusion_csv(CM, NAMES[:2], path)
