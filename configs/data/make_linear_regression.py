"""Writes configs/data/linear_regression.csv, the data of configs/linear_regression.yaml: 101 points of
y = 3x + N(0, 0.33^2) with x evenly spaced over [-1, 1], as the classic Keras linear-regression article
makes them. Seeded, so running it again writes the same file:

    python configs/data/make_linear_regression.py
"""

from pathlib import Path

import numpy as np

SEED = 4


def main() -> None:
    rng = np.random.default_rng(SEED)
    x = np.linspace(-1.0, 1.0, 101)
    y = 3.0 * x + rng.normal(0.0, 0.33, size=x.shape)
    lines = ["x,y"] + [f"{a:.4f},{b:.6f}" for a, b in zip(x, y)]
    Path(__file__).with_name("linear_regression.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
