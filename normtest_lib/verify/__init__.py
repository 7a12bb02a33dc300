"""``normtest verify``: recompute runs' fingerprints with the current code (run.py: one run; sample.py: K runs
per result set and ``verification.json``; stale.py: the runs ``normtest run --rerun-stale`` reruns;
provenance.py: what git says about the code)."""
