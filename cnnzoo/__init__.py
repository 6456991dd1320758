"""cnnzoo: train classic convolutional networks from declarative YAML configs.

The map of the package, in the order `cnnzoo train CONFIG` runs through it:

    cli.py              the Typer app: thin commands that call the modules below; CnnzooError -> exit code 2
    config/             the only code that reads YAML; load_config() -> ModelConfig (typed, validated)
      source.py           parsing, line origins, `base:`, `--set`, the size and merge-bomb limits
      sections.py         the `input:`, `data:` and `train:` sections
      options.py          typed option groups of `train:`: optimizer arguments, SCHEDULES, early stopping,
                          checkpoint (a new schedule or callback option is one class here)
      compile_names.py    train.loss, train.metrics and every monitor: names Keras resolves only in fit
      expand.py           the `model:` section: blocks, parameters, repeat, branches -> layer nodes
      expr.py             the `${...}` evaluator (ast, checked node by node, never eval)
      spec.py             the spec objects everything past config holds
      data_options.py     the table/array keys of `data:` and train.task, class_weight, folds
    layers.py           the layer registry: every keras.layers class, arguments checked by signature
    custom_layers.py    cnnzoo's own layers (the 1998 LeNet-5's: ScaledTanh, Subsampling2D, TableConv2D, RBFOutput)
    builder.py          spec -> keras.Model (no data, no training)
    precision.py        the dtype policy (float32, mixed_bfloat16, mixed_float16, auto)
    data/               one module per dataset behind one registry
      interface.py        DATASET_MODULES (a new dataset is one entry), DataSpec, LoadRequest, DatasetSplits
      mnist.py, flowers17.py, ucr.py, folders.py   the loaders; locate.py, download.py, cache.py find,
                          fetch and cache their files; images.py decodes; splits.py, pipeline.py feed them;
                          mixing.py MixUp/CutMix of training batches (`data.mix`)
      tabular.py, arrays.py, tfds.py   csv, npz/npy and TensorFlow Datasets sources; targets.py turns their
                          targets into classes, multi-hot rows or regression values; standardize.py
                          fits and applies `data.standardize`
    training_setup.py   what train, eval and bench share: labels plan, compile, tf.data pipelines
    tasks.py            classification or regression: inference, labels, metrics, checkpoint monitor;
                        class_weights.py `train.class_weight`; folds.py cross-validation (`--folds K`)
    launch.py           what `cnnzoo train` starts: a new run, its folds or a resumed run, under its strategy
    train.py            fit and resume, writing the run folder as it goes; train_result.py what it returns
    distribute.py       `train.distribute`: the tf.distribute strategy, --cluster -> TF_CONFIG, chief and worker roles
    distributed_loop.py the multi_worker train/eval step (Keras fit fails there) driving the same callbacks
    callbacks.py        atomic checkpoints, history CSV, progress, clean interruption
    schedules.py        the `train.schedule` options as Keras callbacks
    runs.py             the run folder: naming, its files, reading it back
    atomic.py           the one way any file is written (temp name, fsync, rename)
    runlock.py          one writer per run folder
    memory.py           the memory estimate of a run; memory_guard.py checks it against what is available
                        and turns out-of-memory errors into one located error (data/sizes.py: sample counts)
    evaluate.py         `cnnzoo eval`; class_metrics.py the metrics it reports; task_eval.py regression and
                        multi-label reports (regression_metrics.py, regression_plots.py); tta.py `--tta` views
    summary.py, flops.py  `cnnzoo summary`; bench.py `cnnzoo bench`; plots.py curves and matrices
    explain.py          Grad-CAM, kernels, feature maps; pictures.py draws them; inspection.py runs the
                        `explain`, `filters` and `activations` commands (cli_pictures.py declares them)
    runs_table.py, compare.py   `cnnzoo runs` and `compare`; tracking.py, mlflow_logging.py TensorBoard and MLflow
    sweep.py, sweep_space.py    `cnnzoo sweep`; shipped.py configs by name; schema.py the JSON Schema;
                        diagram.py `summary --diagram`; cli_tracking.py, cli_configs.py their commands
    predict.py, inputs.py   `cnnzoo predict`: new files read as the run's loader reads its data
    export.py, runtimes.py  `cnnzoo export`: SavedModel, TFLite, ONNX, .keras, each verified in its runtime
    finetune.py, applications.py   `init_from`/`freeze` (config/finetune.py parses them); keras.applications
    terminal.py         printing user text safely; tensorflow_import.py importing TensorFlow quietly

Where new things go: a command is a function in cli.py (or a cli_*.py beside it) calling a module of
its own; a dataset is a module in data/ plus one DATASET_MODULES entry; a schedule is a class in config/options.py SCHEDULES
plus its callback in schedules.py; a distribution strategy is a `train.distribute` choice in
config/options.py plus its branch in distribute.py.
"""

__version__ = "0.1.0"
