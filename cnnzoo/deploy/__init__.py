"""A trained run used elsewhere: predicting new files, exporting to SavedModel/TFLite/ONNX/.keras, and the
runtimes that verify each export."""
