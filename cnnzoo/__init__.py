"""cnnzoo: train convolutional networks from declarative YAML configs.

One folder per stage of the data flow, each importing only from the ones above it in this list
(tests/test_package_layout.py checks it); the map of every module is docs/development.md.

    errors, terminal, atomic, precision, tensorflow_import, host_memory, safe_read   leaves every stage uses
    layers/       the layer registry, cnnzoo's own layers, keras.applications
    data/         one module per dataset behind one registry; tf.data pipelines
    config/       YAML -> validated, typed spec; the JSON Schema; shipped configs by name
    runs/         the run folder: its files, its record (metrics.json), lock, table, plots
    model/        spec -> keras.Model; fine-tuning, FLOPs, summary, diagram, memory estimate
    training/     launch, fit, labels, callbacks, schedules, distribution, folds, sweep, tracking, bench
    evaluation/   `cnnzoo eval` and its reports, test-time augmentation
    explain/      Grad-CAM, kernels, feature maps
    deploy/       predict, export and the runtimes that verify it
    cli/          the Typer app and its commands
"""

__version__ = "0.1.0"
