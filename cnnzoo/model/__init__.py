"""spec -> keras.Model: the builder, fine-tuning, FLOPs, the summary and diagram, and the memory estimate
with the check that refuses a run which cannot fit."""
