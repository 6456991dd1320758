"""Scoring a trained run: `cnnzoo eval`, the classification, regression and multi-label reports, and the
test-time augmentation views predict shares."""

SPLITS = ("test", "val")  # the held-out splits a trained run is scored on (eval --split, explain --split)
