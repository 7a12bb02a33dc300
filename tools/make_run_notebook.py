"""Write notebooks/run_experiment.ipynb (clean, no outputs). Rerun after editing the cells here."""

import nbformat as nbf
from notebook_writer import write_template

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell

cells = [
    md("# One experiment\n\n"
       "This notebook is one run: it validates its parameters with the project's run schema, trains, "
       "and shows the curves. `normtest run` executes it once per run of a grid with papermill; "
       "`papermill notebooks/run_experiment.ipynb out.ipynb -p epochs 2` runs it by hand. "
       "Any key of the run schema (`normtest_lib/config.py`) can be passed with `-p`; an unknown key is an error. "
       "Rerun with the same `out_dir`, an interrupted run resumes and a finished one is shown again."),
    code("import matplotlib.pyplot as plt\n\n"
         "from normtest_lib.glue import glue\n"
         "from normtest_lib import plots\n"
         "from normtest_lib.api import load_run, resolve_out_dir\n"
         "from normtest_lib.config import make_config\n"
         "from normtest_lib.engine import train\n"
         "from normtest_lib.notebook_params import ParameterGuard\n\n"
         "guard = ParameterGuard(globals())"),
    code("# Defaults: a smoke run on the built-in synthetic data, about a minute on a laptop CPU.\n"
         "out_dir = None  # the run's folder; None: runs/interactive/<run id> in the project\n"
         "dataset = \"synthetic\"\n"
         "data_root = None\n"
         "model = \"small\"\n"
         "pretrained = \"none\"\n"
         "input_norm = \"finetune\"\n"
         "epochs = 8\n"
         "batch_size = 128\n"
         "optimizer = \"sgd\"\n"
         "lr = 0.05\n"
         "seed = 0\n"
         "device = \"auto\"\n"
         "deterministic = False\n"
         "progress = True  # a bar per epoch; `normtest run` passes False",
         metadata={"tags": ["parameters"]}),
    md("## Parameters\n\nEvery parameter set above or injected by papermill goes through the one run schema; "
       "the resolved configuration (defaults included) is what `params.yaml` records."),
    code("# This notebook's own variables, rebound when cells are rerun in JupyterLab, are not parameters.\n"
         "own = {\"out_dir\", \"progress\", \"own\", \"params\", \"config\", \"run_dir\", \"summary\", \"run\", \"fig\", \"key\"}\n"
         "params = {name: globals()[name] for name in guard.new_names(globals()) - own}\n"
         "config = make_config(params)\n"
         "run_dir = resolve_out_dir(out_dir, config)\n"
         "print(run_dir)\n"
         "config"),
    md("## Training"),
    code("summary = train(config, run_dir, progress=progress)\n"
         "run = load_run(run_dir)\n"
         "run.history.round(4)"),
    md("## Curves\n\nThe reported test accuracy is the one at the epoch of best validation accuracy "
       "(model selection never looks at the test split); the last epoch's is kept beside it."),
    code("fig = plots.run_curves(run.history, best_epoch=summary.get(\"best_epoch\"))\n"
         "glue(\"run_curves\", fig, display=True)  # shown here once, and kept for the book\n"
         "plt.close(fig)"),
    code("for key in (\"status\", \"epochs_completed\", \"best_epoch\", \"best_val_acc\", \"test_acc_at_best_val\", \"final_test_acc\", \"seconds\"):\n"
         "    glue(key, summary.get(key), display=False)\n"
         "{key: summary.get(key) for key in (\"status\", \"best_epoch\", \"best_val_acc\", \"test_acc_at_best_val\", \"final_test_acc\", \"seconds\")}"),
]
write_template(cells, "notebooks/run_experiment.ipynb")
