"""Every ```yaml block of README.md and docs/*.md is checked: whole configs build (test_model_language) and
pass the schema (test_schema); the fragments below (a cluster file, entries of model.layers, a `train:`
or `model:` excerpt) are read by cnnzoo's own YAML reader and checked against the part of the schema they
show. A block that is none of these fails here, so no example goes untested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnzoo.config.schema import build_schema
from cnnzoo.config.source import load_document
from cnnzoo.training.distribute import read_cluster

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BASE = {"input": {"shape": [28, 28, 1]}, "model": {"layers": [{"Dense": {"units": 10}}]}}


def yaml_blocks() -> list[tuple[str, str]]:
    """(page:line, text) of every ```yaml block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            line = text[:match.start()].count("\n") + 1
            found.append((f"{page.relative_to(REPO)}:{line}", match.group(1)))
    return found


BLOCKS = yaml_blocks()


def kind(text: str) -> str:
    first = text.lstrip().splitlines()[0]
    if "\nmodel:" in f"\n{text}" or "\nbase:" in f"\n{text}":
        return "config"
    if first.startswith("# cluster.yaml"):
        return "cluster"
    if first.startswith("# entries of model.layers"):
        return "entries"
    if first.startswith("# under model:"):
        return "model excerpt"
    if re.match(r"(#.*\n)*train:", text):
        return "train excerpt"
    return "unknown"


@pytest.fixture(scope="module")
def schema():
    return build_schema()


@pytest.mark.parametrize("place, text", BLOCKS, ids=[place for place, _ in BLOCKS])
def test_every_yaml_block_is_read_and_checked(tmp_path, schema, place, text):
    what = kind(text)
    assert what != "unknown", f"{place}: a yaml block no test checks; make it a whole config or a known fragment"
    if what == "config":
        return  # built and schema-checked by test_model_language and test_schema
    path = tmp_path / "example.yaml"
    # a list of entries is read where it stands in a config, under model.layers
    indented = "".join(f"    {line}\n" for line in text.splitlines())
    path.write_text(f"model:\n  layers:\n{indented}" if what == "entries" else text)
    data = load_document(path).data  # cnnzoo's reader: duplicate keys, aliases and sizes checked
    if what == "entries":
        data = data["model"]["layers"]
    if what == "cluster":
        assert len(read_cluster(path)) >= 2
        return
    if what == "entries":
        config = {**BASE, "model": {"layers": data, "blocks": {"conv_bn": {"params": ["filters"], "layers": [
            {"Conv2D": {"filters": "$filters", "kernel_size": 3}}]}}}}
    elif what == "model excerpt":
        config = {**BASE, "model": {**BASE["model"], **data}}
    else:
        config = {**BASE, **data}
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(config)]
    assert errors == [], f"{place}: {errors}"


def test_the_docs_hold_fragments_of_each_kind():
    kinds = {kind(text) for _, text in BLOCKS}
    assert {"config", "cluster", "entries", "model excerpt", "train excerpt"} <= kinds
