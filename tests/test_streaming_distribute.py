"""A streamed image folder under multi_worker: two worker processes on loopback, each decoding only its share
of every global batch, train what the in-memory multi_worker run trains (the same slices of the same
batches), and the chief's run folder is complete."""

from __future__ import annotations

import json

import pandas as pd

from test_distribute import RUN_FILES, _cluster, _folders, _start_workers
from test_streaming import COLUMNS, config_file, image_folder


def _train_two_workers(tmp_path, name: str, data: str) -> tuple:
    runs, scratch = tmp_path / f"runs_{name}", [tmp_path / f"{name}0", tmp_path / f"{name}1"]
    for folder in scratch:
        folder.mkdir()
    config = config_file(tmp_path, data, f"{name}.yaml")
    workers = _start_workers([str(config), "--runs-dir", str(runs), "--epochs", "2", "--set",
                              "train.precision=float32"], _cluster(tmp_path, f"{name}_cluster.yaml"), scratch, tmp_path)
    outputs = [process.communicate(timeout=400) for process in workers]
    assert [p.returncode for p in workers] == [0, 0], [o[1][-3000:] for o in outputs]
    (run,) = _folders(runs)
    return run, outputs


def test_streamed_multi_worker_trains_what_the_in_memory_run_trains(tmp_path):
    folder = image_folder(tmp_path / "images", per_class=22)
    memory, _ = _train_two_workers(tmp_path, "memory", f"dataset: image_folder, path: {folder}, in_memory: true")
    streamed, outputs = _train_two_workers(tmp_path, "streamed",
                                           f"dataset: image_folder, path: {folder}, in_memory: false")
    assert RUN_FILES <= {p.name for p in streamed.iterdir()}
    assert "worker 1: epoch 2/2" in outputs[1][0]
    pd.testing.assert_frame_equal(pd.read_csv(memory / "history.csv")[COLUMNS],
                                  pd.read_csv(streamed / "history.csv")[COLUMNS], rtol=1e-4)
    record = json.loads((streamed / "metrics.json").read_text())
    assert record["distribute"]["workers"] == 2 and record["skipped_files"] == 0
