"""`cnnzoo summary --diagram`: PNG, SVG and Mermaid pictures of LeNet and Inception-V2."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from cnnzoo.model.diagram import Box, Branches, Frame, diagram_tree, write_diagram
from cnnzoo.model.summary import summarize
from tiny_runs import invoke


def image(path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(path).convert("L"))


def test_lenet_png_is_one_column_of_boxes(tmp_path):
    out = tmp_path / "lenet.png"
    result = invoke("summary", "lenet", "--diagram", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr.replace("\n", "")
    pixels = image(out)
    height, width = pixels.shape
    assert 300 <= width <= 600 and 600 <= height <= 1200  # 9 boxes (input + 8 layers) stacked
    assert 0.05 < (pixels < 200).mean() < 0.5  # boxes and text drawn, mostly white
    assert "conv2d" in result.stdout  # the table is still printed


def test_inception_v2_expanded_png_puts_branches_side_by_side(tmp_path):
    out = tmp_path / "inception.png"
    result = invoke("summary", "inception_v2", "--expand", "--diagram", out)
    assert result.exit_code == 0, result.output
    pixels = image(out)
    height, width = pixels.shape
    assert width >= 900  # four branch columns
    assert 4000 <= height <= 9000


@pytest.fixture(scope="module")
def inception(build_shipped):
    config, built = build_shipped("inception_v2")
    return config, summarize(config, built)


def test_collapsed_png_is_one_column(inception, tmp_path):
    out = write_diagram(*inception, tmp_path / "collapsed.png")
    height, width = image(out).shape
    assert width < 500 and 1500 <= height <= 2500  # input + 19 entries, one box each


def test_svg_keeps_text(inception, tmp_path):
    out = write_diagram(*inception, tmp_path / "inception.svg", expand=True)
    text = "".join(ET.parse(out).getroot().itertext())
    assert "inception_3a  (block inception, 220,512 params)" in text
    assert "merge: concatenate" in text and "(28, 28, 256)" in text


def test_mermaid_has_a_subgraph_per_opened_block_and_merges_every_branch(inception, tmp_path):
    out = write_diagram(*inception, tmp_path / "inception.mmd", expand=True)
    text = out.read_text()
    assert text.startswith("flowchart TB\n")
    assert len(re.findall(r"^\s*subgraph ", text, re.M)) == 3 + 10  # 3 stem conv_bn blocks, 10 inception modules
    merges = re.findall(r'^\s*(n\d+)\["<b>branches</b><br/>merge: concatenate', text, re.M)
    assert len(merges) == 10
    incoming = [len(re.findall(rf"--> {m}$", text, re.M)) for m in merges]
    assert sorted(incoming) == [3, 3] + [4] * 8  # the two reduction modules have three branches


def test_tree_has_one_box_per_entry_unless_expanded(inception):
    config, summary = inception
    tree = diagram_tree(config, summary)
    assert len(tree.items) == 1 + len(config.layers) and all(isinstance(i, Box) for i in tree.items)
    assert tree.items[6].title == "inception_3a" and tree.items[6].kind == "block inception"
    assert tree.items[6].detail == "(28, 28, 256)  220,512 params"
    opened = diagram_tree(config, summary, expand=True)
    module = opened.items[6]
    assert isinstance(module, Frame) and isinstance(module.inner.items[0], Branches)
    assert [len(c.items) for c in module.inner.items[0].columns] == [1, 2, 3, 2]


def test_unknown_diagram_format_is_a_clean_error(tmp_path):
    result = invoke("summary", "lenet", "--diagram", tmp_path / "net.pdf")
    assert result.exit_code == 2 and "--diagram writes .png, .svg, .mmd files" in result.output
    assert not (tmp_path / "net.pdf").exists()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
