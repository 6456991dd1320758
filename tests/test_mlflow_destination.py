"""A config (or a run folder made by someone else) may not choose where MLflow sends a run: MLflow's client
would add the user's MLFLOW_TRACKING_TOKEN, user name, paths, config, metrics and plots. A config names a
local store only; a server comes from MLFLOW_TRACKING_URI in the user's environment."""

from __future__ import annotations

import socket
import threading

import pytest
import yaml

from cnnzoo.config import load_config
from cnnzoo.config.schema import build_schema
from cnnzoo.errors import ConfigError
from tiny_runs import invoke, tiny_setup, train_tiny

jsonschema = pytest.importorskip("jsonschema")
REMOTE = ["http://127.0.0.1:5000", "https://mlflow.example.com", "databricks", "databricks://profile",
          "postgresql://user@db/mlflow", "HTTP://example.com"]
LOCAL = ["mlruns", "./mlruns", "/tmp/mlruns", "file:./mlruns", "file:///tmp/mlruns", "sqlite:///mlflow.db"]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    config, _ = tiny_setup(tmp_path_factory.mktemp("mlflow_destination"))
    return config


@pytest.mark.parametrize("uri", REMOTE)
def test_a_config_naming_a_tracking_server_is_refused_by_validator_and_schema(config_path, uri):
    with pytest.raises(ConfigError, match="may not send runs to a server") as refused:
        load_config(config_path, [f"train.mlflow={{tracking_uri: '{uri}'}}"])
    assert refused.value.path == "train.mlflow.tracking_uri"
    assert "MLFLOW_TRACKING_URI" in str(refused.value)
    data = {**yaml.safe_load(config_path.read_text()), "train": {"mlflow": {"tracking_uri": uri}}}
    assert list(jsonschema.Draft7Validator(build_schema()).iter_errors(data))


@pytest.mark.parametrize("uri", LOCAL)
def test_a_local_store_is_accepted(config_path, uri):
    assert load_config(config_path, [f"train.mlflow={{tracking_uri: '{uri}'}}"]).train.mlflow.tracking_uri == uri


def test_resuming_a_foreign_run_folder_that_names_a_server_sends_nothing(tmp_path):
    config, data_dir = tiny_setup(tmp_path)
    run = train_tiny(config, tmp_path / "runs", data_dir, "--epochs", "1")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    connections = []

    def accept():
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        resolved = yaml.safe_load((run / "config.yaml").read_text())
        resolved["train"]["mlflow"] = {"tracking_uri": f"http://127.0.0.1:{server.getsockname()[1]}"}
        (run / "config.yaml").write_text(yaml.safe_dump(resolved))
        result = invoke("train", "--resume", run, "--epochs", "2", "--data-dir", data_dir)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.exit_code == 2 and "train.mlflow.tracking_uri" in result.output, result.output
    assert connections == []
