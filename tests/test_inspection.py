"""explain (Grad-CAM), filters, activations and eval's mistakes.png, on runs trained by the tests on
generated data where the evidence sits in a known place."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnzoo.cli import app
from data_fixtures import assert_drawn_png, encode, ucr_rows, write_files, write_ucr

IMAGES = textwrap.dedent("""\
    name: quadrant
    input: {shape: [32, 32, 1]}
    model:
      layers:
        - Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: relu, name: c1}
        - Conv2D: {filters: 16, kernel_size: 3, padding: same, activation: relu, name: c2}
        - MaxPooling2D: {pool_size: 2, name: s2}
        - Conv2D: {filters: 16, kernel_size: 3, padding: same, activation: relu, name: c3}
        - GlobalAveragePooling2D: {name: gap}
        - Dense: {units: 3, activation: softmax, name: out}
    data: {dataset: image_folder, path: PATH, validation_split: 0.15, test_split: 0.25}
    train: {epochs: 10, batch_size: 16, optimizer: {name: adam, learning_rate: 0.005}, checkpoint: {monitor: val_loss}}
    """)
SERIES = textwrap.dedent("""\
    name: segment
    input: {shape: [64, 1]}
    model:
      layers:
        - Conv1D: {filters: 8, kernel_size: 5, padding: same, activation: relu}
        - Conv1D: {filters: 8, kernel_size: 5, padding: same, activation: relu, name: last_conv}
        - GlobalAveragePooling1D
        - Dense: {units: 2, activation: softmax}
    data: {dataset: ucr, name: Segment}
    train: {epochs: 12, batch_size: 16, optimizer: {name: adam, learning_rate: 0.01}, checkpoint: {monitor: val_loss}}
    """)


def _quadrant_image(label: int, seed: int) -> np.ndarray:
    """Noise everywhere; in the top-left quadrant a cross (class 0), a hollow square (class 1) or nothing
    (class 2: so that neither pattern can be recognised as the absence of the other)."""
    rng = np.random.default_rng([label, seed])
    image = rng.integers(0, 70, (32, 32)).astype(np.uint8)
    top, left = rng.integers(1, 6, 2)  # the pattern and its blur stay inside the quadrant
    if label == 0:
        image[top:top + 7, left:left + 7] = np.maximum(image[top:top + 7, left:left + 7], 255 * np.eye(7, dtype=np.uint8))
        image[top:top + 7, left:left + 7] = np.maximum(image[top:top + 7, left:left + 7], 255 * np.eye(7, dtype=np.uint8)[::-1])
    elif label == 1:
        image[top, left:left + 7] = image[top + 6, left:left + 7] = 255
        image[top:top + 7, left] = image[top:top + 7, left + 6] = 255
    return np.repeat(image[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quadrant")
    write_files(root / "images", {f"{name}/{i:03d}.png": encode(_quadrant_image(label, i), "png")
                                  for label, name in enumerate(("cross", "square", "blank")) for i in range(100)})
    (root / "quadrant.yaml").write_text(IMAGES.replace("PATH", str(root / "images")))
    result = CliRunner().invoke(app, ["train", str(root / "quadrant.yaml"), "--runs-dir", str(root / "runs")],
                                env={"CNNZOO_CACHE_DIR": str(root / "cache")})
    assert result.exit_code == 0, result.output
    (run,) = (root / "runs").iterdir()
    return run


@pytest.fixture(scope="module")
def series_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("segment")

    def rows(labels, seed):
        out = ucr_rows(labels, 64, seed=seed)
        for row in out:
            row[1:] = [v - float(row[0]) for v in row[1:]]  # noise around 0 for both classes
            bump = np.sin(np.linspace(0, np.pi, 12)) * (3 if row[0] == 1 else -3)
            row[1 + 2:1 + 14] = list(np.asarray(row[1 + 2:1 + 14]) + bump)
        return out

    write_ucr(root / "data" / "ucr" / "Segment", "Segment", rows([0, 1] * 80, 1), rows([0, 1] * 20, 2))
    (root / "segment.yaml").write_text(SERIES)
    result = CliRunner().invoke(app, ["train", str(root / "segment.yaml"), "--runs-dir", str(root / "runs"),
                                      "--data-dir", str(root / "data")])
    assert result.exit_code == 0, result.output
    (run,) = (root / "runs").iterdir()
    return run, root / "data"


def _cam_mass(run: Path, region, data_dir: Path | None = None, classes=(0, 1)) -> tuple[float, float]:
    """(mean share of the heatmap inside `region` for correctly classified samples of `classes`,
    accuracy) over the run's test split."""
    from cnnzoo.explain import inspection
    from cnnzoo.explain.maps import default_cam_layer, grad_cam

    loaded = inspection.load_run(run)
    inputs = inspection.split_inputs(loaded, "test", 10_000, data_dir)
    cams = grad_cam(loaded.model, default_cam_layer(loaded.model, run), inputs.x)
    right = [cam for cam, label in zip(cams, inputs.labels) if cam.predicted == label]
    shares = [cam.heatmap[region].sum() / max(cam.heatmap.sum(), 1e-12)  # an empty map scores 0
              for cam in right if cam.predicted in classes]
    return float(np.mean(shares)), len(right) / len(cams)


def test_grad_cam_looks_at_the_quadrant_that_decides_the_class(image_run):
    share, accuracy = _cam_mass(image_run, (slice(0, 16), slice(0, 16)))
    assert accuracy >= 0.8
    assert share > 0.6, f"only {share:.0%} of the heatmap lies in the top-left quadrant (a quarter of the image)"


def test_grad_cam_on_series_looks_at_the_segment_with_the_signal(series_run):
    run, data = series_run
    share, accuracy = _cam_mass(run, slice(0, 16), data)
    assert accuracy >= 0.8
    assert share > 0.6, f"only {share:.0%} of the heatmap lies in the first quarter of the series"


def test_explain_command_writes_one_picture_per_input_and_a_contact_sheet(image_run, tmp_path):
    result = CliRunner().invoke(app, ["explain", str(image_run), "--limit", "5", "--out", str(tmp_path / "cam")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "cam").iterdir())
    assert written[0] == "contact_sheet.png" and len(written) == 6
    assert all(name.startswith("gradcam-test[") for name in written[1:])
    for name in written:
        assert_drawn_png(tmp_path / "cam" / name, min_size=(200, 200))
    picked = tmp_path / "picked"
    picked.mkdir()
    for name in ("000.png", "001.png"):
        (picked / name).write_bytes((image_run.parent.parent / "images" / "cross" / name).read_bytes())
    (picked / "notes.txt").write_text("not an image")
    files = CliRunner().invoke(app, ["explain", str(image_run), str(picked), "--class", "square",
                                     "--out", str(tmp_path / "files")])
    assert files.exit_code == 0, files.output
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["contact_sheet.png", "gradcam-000.png",
                                                                      "gradcam-001.png"]


def test_filters_grid_has_the_kernels_of_the_layer(image_run, tmp_path):
    from cnnzoo.explain import inspection
    from cnnzoo.explain.maps import conv_kernels

    layer, kernels = conv_kernels(inspection.load_run(image_run).model, "c2", image_run)
    assert kernels.shape == (16, 3, 3, 8)  # one kernel per filter, window x input channels
    result = CliRunner().invoke(app, ["filters", str(image_run), "--out", str(tmp_path)])  # default: the first
    assert result.exit_code == 0, result.output
    assert_drawn_png(tmp_path / "filters-c1.png")


def test_activations_show_every_channel_of_the_default_layers(image_run, tmp_path):
    from cnnzoo.explain import inspection
    from cnnzoo.explain.maps import default_map_layers, feature_maps

    loaded = inspection.load_run(image_run)
    assert default_map_layers(loaded.model) == ["c1", "c2", "s2", "c3"]
    inputs = inspection.split_inputs(loaded, "test", 1, None)
    maps = {layer.name: out.shape for layer, out in feature_maps(loaded.model, ["c1", "s2"], inputs.x, image_run)}
    assert maps == {"c1": (32, 32, 8), "s2": (16, 16, 16)}
    result = CliRunner().invoke(app, ["activations", str(image_run), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"activations-{n}.png" for n in ("c1", "c2", "c3", "s2")]


def test_eval_lists_only_mistakes_most_confident_first(image_run):
    result = CliRunner().invoke(app, ["eval", str(image_run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    mistakes = report["mistakes"]
    assert len(mistakes) == min(24, report["samples"] - round(report["metrics"]["accuracy"] * report["samples"]))
    assert all(m["true"] != m["predicted"] for m in mistakes)
    assert [m["probability"] for m in mistakes] == sorted((m["probability"] for m in mistakes), reverse=True)
    assert_drawn_png(image_run / "mistakes.png", min_size=(200, 100), min_colours=2)


@pytest.mark.parametrize("args, reason", [
    (["explain", "RUN", "--layer", "cc3"], "no layer `cc3`. Did you mean `c3`?"),
    (["explain", "RUN", "--layer", "gap"], "no spatial extent"),
    (["explain", "RUN", "--class", "circle"], "no class `circle`"),
    (["filters", "RUN", "--layer", "s2"], "is a MaxPooling2D, not a convolution"),
    (["activations", "RUN", "--layer", "nope"], "no layer `nope`"),
])
def test_inspection_mistakes_are_one_line_errors(image_run, args, reason):
    result = CliRunner().invoke(app, [str(image_run) if a == "RUN" else a for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and reason in result.output.replace("\n", " ")
