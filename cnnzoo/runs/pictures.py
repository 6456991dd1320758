"""Pictures of what a network learned: Grad-CAM overlays, filter grids, feature-map grids and the most
confident mistakes, as PNGs. Draws arrays it is given; knows nothing about models (cnnzoo.explain.maps
computes them)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.runs.plots import plt, save_figure

MAX_TILES = 64


def _normalised(a: np.ndarray) -> np.ndarray:
    low, high = float(a.min()), float(a.max())
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def _show_input(ax, x: np.ndarray) -> None:
    """An image (H, W, C) in its own colours, or a series (L, C) as lines."""
    if x.ndim == 3:
        ax.imshow(_normalised(x[..., 0]) if x.shape[-1] == 1 else _normalised(x), cmap="gray")
        ax.set_axis_off()
    else:
        ax.plot(x, linewidth=1)
        ax.set_xlim(0, len(x) - 1)


def _overlay(ax, x: np.ndarray, heatmap: np.ndarray, title: str) -> None:
    _show_input(ax, x)
    if x.ndim == 3:
        ax.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    else:
        low, high = ax.get_ylim()
        ax.imshow(heatmap[None, :], cmap="jet", alpha=0.35, vmin=0, vmax=1, aspect="auto",
                  extent=(0, len(x) - 1, low, high))
    ax.set_title(title, fontsize=9)


def draw_cam(x: np.ndarray, heatmap: np.ndarray, title: str, out: Path) -> Path:
    """One input with its Grad-CAM heatmap over it (images) or as a coloured band under it (series)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2) if x.ndim == 3 else (8, 3))
    _overlay(ax, x, heatmap, title)
    fig.tight_layout()
    return save_figure(fig, out)


def _grid(count: int, columns: int | None = None) -> tuple[int, int]:
    cols = columns or math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def draw_contact_sheet(items: Sequence[tuple[np.ndarray, np.ndarray, str]], out: Path) -> Path:
    """Many (input, heatmap, title) overlays on one page."""
    rows, cols = _grid(len(items), min(len(items), 6 if items and items[0][0].ndim == 3 else 2))
    size = (2.3, 2.4) if items and items[0][0].ndim == 3 else (6, 2.2)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size[0], rows * size[1]), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (x, heatmap, title) in zip(axes.flat, items):
        ax.set_axis_on()
        _overlay(ax, x, heatmap, title)
    fig.tight_layout()
    return save_figure(fig, out)


def draw_filters(name: str, kernels: np.ndarray, out: Path) -> Path:
    """Kernels (filters, *window, in_channels): an RGB tile per filter when they read 3 colour channels,
    else a tile per filter and input channel (2D) or a line per input channel (1D); normalised per filter."""
    filters, channels = kernels.shape[0], kernels.shape[-1]
    shown = kernels[:MAX_TILES]
    rgb = kernels.ndim == 4 and channels == 3
    per_row = 1 if rgb or kernels.ndim == 3 else min(channels, 8)
    rows, cols = _grid(len(shown) * per_row, max(per_row, min(8, len(shown))) if per_row == 1 else per_row)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.3 + 0.6), squeeze=False)
    tiles = iter(axes.flat)
    for index, kernel in enumerate(shown):
        kernel = _normalised(kernel)
        if rgb:
            _tile(next(tiles), kernel, f"{index}")
        elif kernel.ndim == 2:  # 1D: (window, in_channels)
            ax = next(tiles)
            ax.plot(kernel, linewidth=1)
            ax.set_title(f"{index}", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            for channel in range(per_row):
                _tile(next(tiles), kernel[..., channel], f"{index}:{channel}", cmap="gray")
    for ax in tiles:
        ax.set_axis_off()
    more = f", first {MAX_TILES} of {filters} filters" if filters > MAX_TILES else ""
    fig.suptitle(f"{name}: kernels {tuple(kernels.shape[1:])} x {filters}{more}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def _tile(ax, image: np.ndarray, title: str, cmap: str | None = None) -> None:
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def draw_feature_maps(name: str, maps: np.ndarray, out: Path) -> Path:
    """One layer's output for one input: a tile per channel ((H, W, C) as images, (L, C) as lines)."""
    channels = maps.shape[-1]
    shown = min(channels, MAX_TILES)
    rows, cols = _grid(shown)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.4 + 0.6), squeeze=False)
    for channel, ax in enumerate(axes.flat):
        if channel >= shown:
            ax.set_axis_off()
        elif maps.ndim == 3:
            _tile(ax, maps[..., channel], f"{channel}", cmap="viridis")
        else:
            ax.plot(maps[:, channel], linewidth=1)
            ax.set_title(f"{channel}", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
    more = f", first {MAX_TILES} of {channels} channels" if channels > MAX_TILES else ""
    fig.suptitle(f"{name}: output {tuple(maps.shape)}{more}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def draw_mistakes(items: Sequence[tuple[np.ndarray, str]], out: Path) -> Path:
    """(input, caption) of the most confident mistakes, most confident first."""
    if not items:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
        ax.set_axis_off()
        return save_figure(fig, out)
    image = items[0][0].ndim == 3
    rows, cols = _grid(len(items), min(len(items), 6 if image else 2))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * (2.3 if image else 6), rows * (2.5 if image else 2.2)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (x, caption) in zip(axes.flat, items):
        ax.set_axis_on()
        _show_input(ax, x)
        ax.set_title(caption, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
