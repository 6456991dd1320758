"""The commands that draw what a trained network learned: `cnnzoo explain`, `filters`, `activations`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import RunDataDirOption, RunDirArg, choices, echo_paths, run_data_dir, user_errors
from cnnzoo.evaluation import SPLITS
from cnnzoo.runs.folder import CHECKPOINTS

Checkpoint = choices("Checkpoint", CHECKPOINTS)
Split = choices("Split", SPLITS)
LayerOption = Annotated[Optional[str], typer.Option(
    "--layer", help="A layer name as `cnnzoo summary --expand` prints it (default: see the command).")]
OutOption = Annotated[Optional[Path], typer.Option("--out", help="Folder for the PNGs (default: RUN_DIR/pictures).")]


@user_errors
def explain(run_dir: RunDirArg, inputs: Annotated[Optional[list[Path]], typer.Argument(
                help="Image files or folders; without them, --split samples of the run's own data.")] = None,
            split: Annotated[Split, typer.Option(help="The run's split to explain when no INPUT is given.")] = Split.test,
            limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many split samples.")] = 16,
            class_: Annotated[Optional[str], typer.Option(
                "--class", help="Map the evidence for this class (default: the predicted one).")] = None,
            layer: LayerOption = None, out: OutOption = None, data_dir: RunDataDirOption = None,
            checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """Grad-CAM: where the network looks, as a heatmap over each input; one PNG each and a contact sheet.

    The default layer is the last convolution with spatial extent (--layer chooses another)."""
    from cnnzoo.explain import inspection

    loaded = inspection.load_run(run_dir, checkpoint.value)
    given = inspection.file_inputs(loaded, inputs) if inputs else inspection.split_inputs(
        loaded, split.value, limit, run_data_dir(data_dir, loaded.run.path))
    written = inspection.explain(loaded, given, layer=layer, class_name=class_, out_dir=out or loaded.run.pictures)
    echo_paths(written)


@user_errors
def filters(run_dir: RunDirArg, layer: LayerOption = None, out: OutOption = None,
            checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """The kernels of a convolutional layer (default: the first) as an image grid."""
    from cnnzoo.explain import inspection
    from cnnzoo.explain.maps import conv_kernels
    from cnnzoo.runs.pictures import draw_filters

    loaded = inspection.load_run(run_dir, checkpoint.value)
    conv, kernels = conv_kernels(loaded.model, layer, loaded.run.path)
    folder = out or loaded.run.pictures
    echo_paths([draw_filters(conv.name, kernels, folder / f"filters-{conv.name}.png")])


@user_errors
def activations(run_dir: RunDirArg, inputs: Annotated[Optional[list[Path]], typer.Argument(
                    help="One image file; without it, the first sample of --split.")] = None,
                layer: Annotated[Optional[list[str]], typer.Option(
                    "--layer", help="Layer(s) to show, repeatable (default: every convolution and pooling).")] = None,
                split: Annotated[Split, typer.Option(help="The run's split to take the input from.")] = Split.test,
                out: OutOption = None, data_dir: RunDataDirOption = None,
                checkpoint: Annotated[Checkpoint, typer.Option(help="best or last.")] = Checkpoint.best):
    """The feature maps of one input at the chosen layers, one grid per layer (one tile per channel)."""
    from cnnzoo.explain import inspection
    from cnnzoo.explain.maps import default_map_layers, feature_maps
    from cnnzoo.runs.pictures import draw_feature_maps

    loaded = inspection.load_run(run_dir, checkpoint.value)
    given = inspection.file_inputs(loaded, inputs[:1]) if inputs else inspection.split_inputs(
        loaded, split.value, 1, run_data_dir(data_dir, loaded.run.path))
    names = layer or default_map_layers(loaded.model)
    folder = out or loaded.run.pictures
    echo_paths([draw_feature_maps(chosen.name, maps, folder / f"activations-{chosen.name}.png")
                 for chosen, maps in feature_maps(loaded.model, names, given.x, loaded.run.path)])
