"""The names `cnnzoo export` takes, apart from its heavy imports so `--help` stays fast: the formats
(each one entry of export.FORMATS) and TFLite's quantisations."""

EXPORT_FORMATS = ("savedmodel", "tflite", "onnx", "keras")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
