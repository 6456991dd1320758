"""The commands about datasets: `cnnzoo pack`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from cnnzoo.cli.common import user_errors

SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")


@user_errors
def pack(folder: Annotated[Path, typer.Argument(help="An image folder: one sub-folder of images per class.")],
         out_dir: Annotated[Path, typer.Argument(help="A new folder for the shards and manifest.json.")],
         size: Annotated[Optional[str], typer.Option(
             help="Resize every image to HEIGHTxWIDTH and store it as JPEG (default: the files' own bytes).")] = None,
         grey: Annotated[bool, typer.Option("--grey", help="With --size: store one channel instead of RGB.")] = False,
         shard_mb: Annotated[int, typer.Option(min=1, max=100_000, help="Start a new shard after this many MB.")] = 128,
         seed: Annotated[int, typer.Option(help="Seed of the order images are written in.")] = 0,
         skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Leave out (and list) files that do not decode, "
                                                "instead of stopping at the first.")] = False):
    """Pack an image folder into TFRecord shards (read it with `dataset: tfrecord`, `path: OUT_DIR`)."""
    from cnnzoo.data.pack import pack_folder
    from cnnzoo.errors import RunError
    from cnnzoo.host_memory import human_bytes
    from cnnzoo.terminal import console as make_console, plain

    shape = None
    if size is not None:
        match = SIZE.fullmatch(size)
        if not match:
            raise RunError(f"--size {size!r} is not HEIGHTxWIDTH, e.g. --size 224x224.")
        shape = (int(match[1]), int(match[2]))
    elif grey:
        raise RunError("--grey needs --size (without it the files are stored as they are).")
    report = pack_folder(folder, out_dir, size=shape, channels=1 if grey else 3, shard_bytes=shard_mb << 20,
                         seed=seed, skip_bad=skip_bad)
    console = make_console()
    for name in report.skipped:
        console.print(f"[yellow]skipped[/] {plain(name)}: not decodable as JPEG, PNG, BMP or GIF", highlight=False)
    console.print(f"wrote {plain(report.out_dir)}: {report.records:,} images of {len(report.classes)} classes in "
                  f"{report.shards} shard(s), {human_bytes(report.bytes)}"
                  + (f", {len(report.skipped)} skipped" if report.skipped else "")
                  + f"; train on it with `data: {{dataset: tfrecord, path: {plain(report.out_dir)}}}`", highlight=False)
