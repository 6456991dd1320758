"""Training a model on data: launching a run (new, folds, resumed), the labels decision, compiling and the
tf.data pipelines, fit with its callbacks and schedules, distribution, sweeps, tracking and bench."""
