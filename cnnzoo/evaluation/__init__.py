"""Scoring a trained run: `cnnzoo eval`, the classification, regression and multi-label reports, and the
test-time augmentation views predict shares."""
