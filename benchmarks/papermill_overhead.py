"""What executing a run through papermill costs over training it directly.

    python benchmarks/papermill_overhead.py [--train-subset 200] [--epochs 1] [--repeats 3] [--json out.json]

The same tiny run (``small`` model, ``synthetic`` data, ``--train-subset``
images, ``--epochs`` epochs, CPU) four ways, each into a fresh folder:

- ``papermill``: :func:`normtest_lib.grid.execute.execute_run` on the experiment
  notebook, exactly what a grid does per run: a kernel starts, the notebook
  imports what it shows with (myst_nb, plots), validates, trains, draws its
  figure, and the executed notebook is written;
- ``papermill_bare``: the same through papermill, but with a minimal notebook
  that only validates and trains (the cost of papermill and the kernel
  alone, without the notebook's own imports and figures);
- ``script``: a fresh interpreter that imports the engine and calls
  ``engine.train`` (what ``normtest train`` or a plain script pays);
- ``in_process``: ``engine.train`` in this already-warm process (the floor).

The passes are interleaved and repeated; the best pass of each is reported
(load from other processes only ever slows a pass down), the medians beside it.
Overhead = papermill - script (the target is at most 3 s), split into the
part papermill itself costs (papermill_bare - script) and the part the
notebook's contents cost (papermill - papermill_bare).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-subset", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--notebook", default=None, help="default: notebooks/run_experiment.ipynb")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from normtest_lib.config import make_config
    from normtest_lib.engine import train
    from normtest_lib.grid.spec import DEFAULT_NOTEBOOK, run_id
    from normtest_lib.grid.execute import RunTask, execute_run

    notebook = Path(args.notebook or Path(__file__).resolve().parent.parent / DEFAULT_NOTEBOOK)
    config = make_config(model="small", dataset="synthetic", train_subset=args.train_subset, epochs=args.epochs, device="cpu")
    params = config.to_dict()
    script = (
        "import sys, time; start = time.perf_counter()\n"
        "from normtest_lib.config import make_config; from normtest_lib.engine import train\n"
        f"train(make_config({params!r}), sys.argv[1])\n"
        "print(time.perf_counter() - start)\n"
    )

    times: dict[str, list[float]] = {"papermill": [], "papermill_bare": [], "script": [], "in_process": []}
    with tempfile.TemporaryDirectory(prefix="papermill-overhead-") as tmp:
        root = Path(tmp)
        bare = write_bare_notebook(root / "bare.ipynb")
        train(config, root / "warmup")  # imports, data generation, first-call costs out of the way
        for repeat in range(args.repeats):
            for name, template in (("papermill", notebook), ("papermill_bare", bare)):
                start = time.perf_counter()
                outcome = execute_run(RunTask(run_id(config), str(template), str(root / f"{name}{repeat}"), params))
                times[name].append(time.perf_counter() - start)
                if outcome.status != "complete":
                    print(f"the {name} run did not complete: {outcome.status}: {outcome.error}", file=sys.stderr)
                    return 1

            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", script, str(root / f"script{repeat}")], check=True, capture_output=True)
            times["script"].append(time.perf_counter() - start)

            start = time.perf_counter()
            train(config, root / f"in_process{repeat}")
            times["in_process"].append(time.perf_counter() - start)

    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    figures = {
        "config": {"model": "small", "train_subset": args.train_subset, "epochs": args.epochs, "device": "cpu"},
        "seconds": times,
        "best": best,
        "median": median,
        "overhead_vs_script_s": best["papermill"] - best["script"],
        "papermill_itself_s": best["papermill_bare"] - best["script"],
        "notebook_contents_s": best["papermill"] - best["papermill_bare"],
        "overhead_vs_in_process_s": best["papermill"] - best["in_process"],
        "target_overhead_s": 3.0,
    }
    print(f"run: small model, {args.train_subset} images, {args.epochs} epoch(s), CPU; best (median) of {args.repeats}")
    for name in times:
        print(f"  {name:<15} {best[name]:6.2f} s  ({median[name]:.2f} s)")
    print(f"papermill overhead vs a fresh script: {figures['overhead_vs_script_s']:.2f} s (target <= 3 s)")
    print(f"  of which papermill and the kernel:   {figures['papermill_itself_s']:.2f} s")
    print(f"  of which the notebook's contents:    {figures['notebook_contents_s']:.2f} s")
    print(f"papermill overhead vs in-process:     {figures['overhead_vs_in_process_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def write_bare_notebook(path: Path) -> Path:
    """A notebook that only validates its parameters and trains."""
    import nbformat

    parameters = nbformat.v4.new_code_cell("out_dir = None")
    parameters.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "from normtest_lib.config import RunConfig, make_config\n"
        "from normtest_lib.engine import train\n"
        "train(make_config({name: globals()[name] for name in RunConfig.model_fields if name in globals()}), out_dir)\n"
    )
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [parameters, body]
    nbformat.write(notebook, path)
    return path


if __name__ == "__main__":
    sys.exit(main())
