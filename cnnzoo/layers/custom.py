"""cnnzoo's own layers: what the 1998 LeNet-5 (LeCun, Bottou, Bengio, Haffner, "Gradient-based
learning applied to document recognition", Proc. IEEE 86(11)) needs and Keras does not have.

    ScaledTanh      the paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (eq. in app. A)
    Subsampling2D   S2/S4: the sum of each non-overlapping pool x a trainable coefficient + a trainable
                    bias, one pair per map (2 parameters per map)
    TableConv2D     C3: a convolution whose output map k sees only the input maps listed in
                    connections[k] (the paper's Table I by default), so it has only those kernels
    RBFOutput       the output layer: y_i = sum_j (x_j - w_ij)^2, the squared distance of F6's 84 units
                    to class i's fixed 7x12 bitmap (+1 ink, -1 paper); the prototypes are not trained

Each is registered as a Keras serialisable (package `cnnzoo`), so `.keras` checkpoints of a model that
uses them load wherever this module is imported (runs.load_checkpoint does), and the layer registry
(cnnzoo.layers.registry) offers them to configs by class name with the same argument checks as Keras layers.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

# Table I of the paper: the S2 maps (0-5) each C3 map (0-15) is connected to.
LENET5_C3_TABLE = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
                   (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
                   (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))

# The RBF prototypes: a 7-wide, 12-high digit font drawn for cnnzoo after the paper's Fig. 3 (the
# paper's exact bitmaps are not published as data). '#' is ink (+1), '.' is paper (-1).
DIGIT_BITMAPS_7X12 = (
    (".#####.", "##...##", "##...##", "##..###", "##.#.##", "##.#.##", "###..##", "##...##", "##...##",
     "##...##", ".#####.", "......."),
    ("...##..", "..###..", ".####..", "...##..", "...##..", "...##..", "...##..", "...##..", "...##..",
     "...##..", ".######", "......."),
    (".#####.", "##...##", ".....##", ".....##", "....##.", "...##..", "..##...", ".##....", "##.....",
     "##.....", "#######", "......."),
    (".#####.", "##...##", ".....##", ".....##", "..####.", ".....##", ".....##", ".....##", ".....##",
     "##...##", ".#####.", "......."),
    ("....##.", "...###.", "..####.", ".##.##.", "##..##.", "##..##.", "#######", "....##.", "....##.",
     "....##.", "....##.", "......."),
    ("#######", "##.....", "##.....", "######.", ".....##", ".....##", ".....##", ".....##", ".....##",
     "##...##", ".#####.", "......."),
    ("..####.", ".##....", "##.....", "##.....", "######.", "##...##", "##...##", "##...##", "##...##",
     "##...##", ".#####.", "......."),
    ("#######", ".....##", ".....##", "....##.", "...##..", "...##..", "..##...", "..##...", "..##...",
     "..##...", "..##...", "......."),
    (".#####.", "##...##", "##...##", "##...##", ".#####.", "##...##", "##...##", "##...##", "##...##",
     "##...##", ".#####.", "......."),
    (".#####.", "##...##", "##...##", "##...##", "##...##", ".######", ".....##", ".....##", ".....##",
     "....##.", ".####..", "......."),
)


def digit_prototypes() -> np.ndarray:
    """(84, 10) float32: column i is digit i's 7x12 bitmap read row by row, ink +1 and paper -1."""
    columns = [[1.0 if c == "#" else -1.0 for row in rows for c in row] for rows in DIGIT_BITMAPS_7X12]
    return np.asarray(columns, np.float32).T


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"`{name}` must be a positive integer or two, received {value!r}")
    return pair


@keras.saving.register_keras_serializable(package="cnnzoo")
class ScaledTanh(keras.layers.Layer):
    """A tanh(S x): with the defaults, f(1) = 1 and f(-1) = -1, where its second derivative peaks."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0, **kwargs):
        super().__init__(**kwargs)
        self.amplitude, self.slope = float(amplitude), float(slope)

    def call(self, inputs):
        return self.amplitude * ops.tanh(self.slope * inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "amplitude": self.amplitude, "slope": self.slope}


@keras.saving.register_keras_serializable(package="cnnzoo")
class Subsampling2D(keras.layers.Layer):
    """Sum over each non-overlapping `pool_size` window, x a per-map coefficient, + a per-map bias."""

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")

    def build(self, input_shape):
        channels = input_shape[-1]
        # 1 (the plain window sum, then a learned scale); a run started from 1/area (average pooling,
        # with batch 64) learned more slowly on MNIST (docs/models-and-results.md, Results)
        self.coefficient = self.add_weight(name="coefficient", shape=(channels,), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        area = self.pool_size[0] * self.pool_size[1]
        sums = ops.average_pool(inputs, self.pool_size, strides=self.pool_size, padding="valid") * area
        return sums * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return n, None if h is None else h // self.pool_size[0], None if w is None else w // self.pool_size[1], c

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size)}


@keras.saving.register_keras_serializable(package="cnnzoo")
class TableConv2D(keras.layers.Layer):
    """A 'valid', stride-1 convolution where output map k sees only the input maps in connections[k].

    Only the connected kernels are weights (a flat vector); a fixed index map scatters them into a full
    kernel with zeros elsewhere. connections=None is the paper's C3 table (6 inputs, 16 filters)."""

    def __init__(self, filters, kernel_size, connections=None, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        table = LENET5_C3_TABLE if connections is None else connections
        if not isinstance(filters, int) or len(table) != filters:
            raise ValueError(f"`connections` needs one list of input maps per filter: {filters!r} filters, "
                             f"{len(table)} lists" + (" (the default is the paper's 16-map C3 table)"
                                                      if connections is None else ""))
        self.connections = tuple(tuple(int(i) for i in maps) for maps in table)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        channels = input_shape[-1]
        bad = [m for maps in self.connections for m in maps if not 0 <= m < channels]
        if bad or any(not maps or len(set(maps)) != len(maps) for maps in self.connections):
            raise ValueError(f"`connections` must list distinct input maps 0..{channels - 1} for every "
                             f"filter, received {[list(m) for m in self.connections]}")
        index = np.zeros((*self.kernel_size, channels, self.filters), np.int32)
        taps = self.kernel_size[0] * self.kernel_size[1]
        count = 0
        for k, maps in enumerate(self.connections):
            for m in maps:
                index[:, :, m, k] = 1 + count + np.arange(taps).reshape(self.kernel_size)
                count += taps
        self.index = index
        fan_in = np.array([len(maps) * taps for maps in self.connections], np.float32)
        limit = float(2.4 / fan_in.mean())  # the paper's uniform(-2.4/F, 2.4/F) initialisation
        self.kernel = self.add_weight(name="kernel", shape=(count,),
                                      initializer=keras.initializers.RandomUniform(-limit, limit))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def full_kernel(self):
        """The (kh, kw, in, filters) kernel with zeros where the table has no connection."""
        padded = ops.concatenate([ops.zeros((1,), self.kernel.dtype), self.kernel])
        return ops.take(padded, ops.convert_to_tensor(self.index))

    def call(self, inputs):
        outputs = ops.conv(inputs, ops.cast(self.full_kernel(), inputs.dtype), padding="valid")
        return outputs + ops.cast(self.bias, outputs.dtype) if self.use_bias else outputs

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        out = [None if d is None else d - k + 1 for d, k in zip((h, w), self.kernel_size)]
        return n, *out, self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "connections": [list(maps) for maps in self.connections], "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="cnnzoo")
class RBFOutput(keras.layers.Layer):
    """Euclidean RBF units over fixed prototypes: y_i = sum_j (x_j - w_ij)^2 (eq. 7 of the paper).

    output='distances' returns y; output='probabilities' (the default) returns softmax(-y), so that
    argmax is the nearest prototype and sparse categorical cross-entropy is the paper's MAP criterion
    (eq. 9) with its rubbish-class constant j taken to infinity."""

    OUTPUTS = ("probabilities", "distances")

    def __init__(self, units: int = 10, output: str = "probabilities", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or not 1 <= units <= 10:
            raise ValueError(f"`units` must be 1 to 10 (one per digit bitmap), received {units!r}")
        if output not in self.OUTPUTS:
            raise ValueError(f"`output` must be one of {', '.join(self.OUTPUTS)}, received {output!r}")
        self.units, self.output_kind = units, output

    def build(self, input_shape):
        if input_shape[-1] != 84:
            raise ValueError(f"the 7x12 bitmaps need 84 inputs (F6), received {input_shape[-1]}")
        bitmaps = digit_prototypes()[:, :self.units]
        self.prototypes = self.add_weight(name="prototypes", shape=bitmaps.shape, trainable=False,
                                          initializer=keras.initializers.Constant(bitmaps))

    def call(self, inputs):
        prototypes = ops.cast(self.prototypes, inputs.dtype)
        difference = ops.expand_dims(inputs, -1) - prototypes  # (batch, 84, units)
        distances = ops.sum(ops.square(difference), axis=-2)
        return distances if self.output_kind == "distances" else ops.softmax(-distances, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "output": self.output_kind}


CUSTOM_LAYERS = {cls.__name__: cls for cls in (ScaledTanh, Subsampling2D, TableConv2D, RBFOutput)}
