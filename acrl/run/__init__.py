"""Run services: the model file, checkpoints, run-directory files, metrics and TensorBoard,
the progress bar, the bookkeeping after every update, callbacks, evaluation and videos."""
