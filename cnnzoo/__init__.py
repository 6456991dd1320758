"""cnnzoo: train classic convolutional networks from declarative YAML configs."""

__version__ = "0.1.0"
