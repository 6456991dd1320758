"""Shipped configs as package data: bare names, `cnnzoo configs`, `cnnzoo init`, and a built wheel holds them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from cnnzoo.config.shipped import shipped_dir, shipped_names
from cnnzoo.config.source import load_document
from tiny_runs import TINY_CONFIG, invoke

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["alexnet", "alexnet_bn", "cnn1d", "cnn1d_fcn", "cnn1d_fcn_wang", "cnn1d_resnet_wang", "efficientnet_b0",
           "inception_v2", "inception_v2_gap", "iris_mlp", "lenet", "lenet5", "lenet5_1998", "lenet_bn", "lenet_deep", "lenet_finetune", "linear_regression",
           "mobilenet_v2", "resnet18_flowers", "resnet18_flowers_128px", "resnet50", "vgg11_gap", "vgg16"]


def test_shipped_names_are_the_configs_folder():
    assert shipped_dir() == REPO / "configs"
    assert shipped_names() == SHIPPED


def test_a_bare_name_resolves_to_the_shipped_config_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("summary", "lenet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == 1_256_080
    assert f"using the shipped config {REPO / 'configs' / 'lenet.yaml'}" in result.stderr.replace("\n", "")


def test_the_readme_path_configs_name_works_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the README's `configs/lenet.yaml` is the shipped lenet
    result = invoke("summary", "configs/lenet.yaml", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == 1_256_080 and "using the shipped config" in result.stderr
    missing = invoke("summary", "configs/lenet_typo.yaml")
    assert missing.exit_code == 2 and "config file not found" in missing.output
    assert "bare name from any folder" in missing.output.replace("\n", " ")


def test_an_existing_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet").write_text(TINY_CONFIG)
    result = invoke("summary", "lenet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "tiny" and "using the shipped config" not in result.stderr


def test_an_unknown_name_is_still_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("summary", "lenet7")
    assert result.exit_code == 2 and "lenet7: config file not found" in result.output


def test_configs_lists_names_datasets_params_and_caches_the_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path / "cache"))
    result = invoke("configs", "--json")
    assert result.exit_code == 0, result.output
    listed = {c["name"]: c for c in json.loads(result.stdout)}
    assert list(listed) == SHIPPED
    assert listed["lenet"]["params"] == 1_256_080 and listed["lenet"]["dataset"] == "mnist"
    assert listed["vgg16"]["params"] == 134_330_193 and listed["vgg16"]["dataset"] == "oxflower17"
    assert listed["cnn1d"]["dataset"] == "ucr/FordA"
    assert listed["inception_v2_gap"]["params"] == 10_297_681
    assert listed["cnn1d_fcn_wang"]["params"] == 265_986 and listed["cnn1d_fcn_wang"]["dataset"] == "ucr/ECG200"
    assert listed["lenet"]["description"].startswith("LeNet (tutorial variant) on MNIST")
    cache = json.loads((tmp_path / "cache" / "shipped-params.json").read_text())
    assert cache["vgg16"]["params"] == 134_330_193
    table = invoke("configs")
    assert table.exit_code == 0 and "counting the parameters" not in table.output
    assert "134,330,193" in table.output and "cnn1d_fcn" in table.output


def test_init_copies_a_config_out_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "lenet")
    assert result.exit_code == 0, result.output
    shipped = (REPO / "configs" / "lenet.yaml").read_text()
    schema_line = f"# yaml-language-server: $schema={(REPO / 'configs' / 'cnnzoo.schema.json').as_uri()}\n"
    assert (tmp_path / "lenet.yaml").read_text() == schema_line + shipped.split("\n", 1)[1]
    again = invoke("init", "lenet")
    assert again.exit_code == 2 and "never overwrites" in again.output
    assert (tmp_path / "lenet.yaml").read_text() == schema_line + shipped.split("\n", 1)[1]
    unknown = invoke("init", "resnet")
    assert unknown.exit_code == 2 and "no shipped config named 'resnet'" in unknown.output and "lenet5" in unknown.output


def test_init_into_a_folder_path_writes_name_yaml_inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "lenet", "new/folder/")  # missing: made; the trailing slash says it is a folder
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "folder" / "lenet.yaml").is_file() and not (tmp_path / "new" / "folder").is_file()
    assert invoke("init", "lenet5", "new").exit_code == 0 and (tmp_path / "new" / "lenet5.yaml").is_file()
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    blocked = invoke("init", "lenet", "notes.txt/")
    assert blocked.exit_code == 2 and "cannot make the folder notes.txt" in blocked.output, blocked.output


def test_init_merges_the_base_of_an_inheriting_config(tmp_path):
    dest = tmp_path / "mine.yaml"
    result = invoke("init", "inception_v2_gap", dest)
    assert result.exit_code == 0, result.output
    assert not [line for line in dest.read_text().splitlines() if line.startswith("base:")]
    assert load_document(dest).data == load_document(REPO / "configs" / "inception_v2_gap.yaml").data


def test_pyproject_lists_every_package():
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "cnnzoo").rglob("__init__.py")}
    assert found | {"cnnzoo.configs"} == set(packages)


def test_a_non_editable_install_has_the_configs(tmp_path):
    source = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name if source.exists() else _mkdir(source) / name)
    for folder in ("cnnzoo", "configs"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("cnnzoo-*.whl")
    expected = {f"cnnzoo/configs/{n}.yaml" for n in SHIPPED} | {"cnnzoo/configs/cnnzoo.schema.json"}
    assert expected <= set(zipfile.ZipFile(wheel).namelist())
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = subprocess.run([sys.executable, "-c", "from cnnzoo.config.shipped import resolve_config; "
                            "print(resolve_config('vgg16').path)"], cwd=tmp_path, capture_output=True, text=True,
                           env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, check=True)
    assert probe.stdout.strip() == str(tmp_path / "site" / "cnnzoo" / "configs" / "vgg16.yaml")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
