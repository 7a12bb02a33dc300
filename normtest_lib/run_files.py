"""The names of the files in a run folder: one place for the engine, the runner, results and the book."""

PARAMS = "params.yaml"
HISTORY = "history.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"  # the last epoch, with everything needed to resume
BEST = "best.pt"  # the best epoch's weights (by validation accuracy; the last epoch without validation)
PROBES = "probes.csv"  # per-epoch measurements, long format (engine/probes.py)
ENVIRONMENT = "environment.json"
NOISY_LABELS = "noisy_labels.csv"  # with label_noise > 0: index, label, noisy_label of each training image
NOISY_VAL_LABELS = "noisy_val_labels.csv"  # the same for the validation images, with noisy_val
FINGERPRINT = "fingerprint.json"  # the first optimizer steps' losses, for `normtest verify` (engine/fingerprint.py)
RUN_NOTEBOOK = "run_experiment.ipynb"  # the executed notebook that `normtest run` leaves beside the results

# Beside the run folders of a result set (<root>/<study>/<profile>/): the last `normtest verify --sample`.
VERIFICATION = "verification.json"

# Statuses of a finished result: a diverged run is an answer too, and is never rerun.
FINISHED = frozenset({"complete", "diverged"})
