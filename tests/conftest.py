"""Shared fixtures: where the shipped configs are, the opt-in real-data directory, and its generated stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# CI gives a relative CNNZOO_DATA_DIR (../shared/data); tests that chdir into tmp_path must still find it.
if os.environ.get("CNNZOO_DATA_DIR"):
    os.environ["CNNZOO_DATA_DIR"] = str(Path(os.environ["CNNZOO_DATA_DIR"]).expanduser().resolve())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: $PYTEST_XDIST_AUTO_NUM_WORKERS if set, else one worker per CPU this process may run on
    (xdist itself would count physical cores); each worker holds its own TensorFlow (~1 GB)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.fixture(scope="session")
def configs_dir() -> Path:
    """The shipped configs/ folder."""
    return REPO / "configs"


@pytest.fixture(scope="session")
def broken_configs_dir() -> Path:
    """tests/broken_configs/: one broken config per mistake, indexed by expected.yaml."""
    return REPO / "tests" / "broken_configs"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """$CNNZOO_DATA_DIR, the shared read-only datasets, for the tests about the real dataset files themselves
    (tests/test_data_real.py); a visible skip when it is not set. Every other test that needs MNIST, FordA or
    Flowers-17 as an input takes `generated_data_dir`."""
    value = os.environ.get("CNNZOO_DATA_DIR")
    if not value:
        pytest.skip("CNNZOO_DATA_DIR not set: real-data tests need the shared datasets folder")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"CNNZOO_DATA_DIR={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def generated_data_dir(tmp_path_factory) -> Path:
    """A data directory laid out as CNNZOO_DATA_DIR is (mnist.npz, ucr/FordA/, 17flowers.tgz), holding small
    generated data in the real files' formats: for the tests that need the shipped configs' datasets as
    inputs but are not about the real files. Written once per test process; read-only for the tests."""
    from data_fixtures import write_generated_data

    return write_generated_data(tmp_path_factory.mktemp("generated-data"))


@pytest.fixture(scope="session")
def build_shipped(configs_dir):
    """name -> (config, Built) of a shipped config at its full size, built once per test session."""
    cache: dict = {}

    def build(name: str):
        if name not in cache:
            from cnnzoo.config import load_config
            from cnnzoo.model.builder import build_model

            from data_fixtures import FROM_DATA

            config = load_config(configs_dir / f"{name}.yaml", FROM_DATA.get(name, []))
            cache[name] = (config, build_model(config))
        return cache[name]

    return build
