"""Layers a config may name: the registry of every keras.layers class (checked by signature), cnnzoo's own
layers and the keras.applications entry. Imports nothing of cnnzoo but the root leaves."""
