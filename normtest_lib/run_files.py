"""The names of the files in a run folder: one place for the engine, the runner, results and the book."""

PARAMS = "params.yaml"
HISTORY = "history.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"  # the last epoch, with everything needed to resume
BEST = "best.pt"  # the best epoch's weights (by validation accuracy; the last epoch without validation)
PROBES = "probes.csv"  # per-epoch measurements, long format (engine/probes.py)
ENVIRONMENT = "environment.json"
RUN_NOTEBOOK = "run_experiment.ipynb"  # the executed notebook that `normtest run` leaves beside the results

# Statuses of a finished result: a diverged run is an answer too, and is never rerun.
FINISHED = frozenset({"complete", "diverged"})
