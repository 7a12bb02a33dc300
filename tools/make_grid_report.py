"""Write notebooks/grid_report.ipynb (clean, no outputs). Rerun after editing the cells here."""

import nbformat as nbf
from notebook_writer import write_template

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell

cells = [
    md("# Results of a grid: the quickstart\n\n"
       "Every number on this page is computed from the run folders of one grid (`runs/` and `results/`); "
       "nothing is typed in. Accuracies are on the test split at the epoch of best validation accuracy."),
    code("from normtest_lib import plots, results, tables\n"
         "from normtest_lib.glue import glue\n"
         "from normtest_lib.notebook_params import ParameterGuard\n"
         "from normtest_lib.results import collect_histories, collect_runs\n\n"
         "guard = ParameterGuard(globals())"),
    code("study = \"quickstart\"\n"
         "profile = None  # None: the profile with the most complete runs\n"
         "runs_root = \"runs\"\n"
         "results_root = \"results\"\n"
         "metric = \"test_acc_at_best_val\"\n"
         "compare = \"input_norm\"  # the setting the grid compares\n"
         "baseline = \"finetune\"  # differences are taken against this setting\n"
         "rows = [\"dataset\"]  # one table row per value of these",
         metadata={"tags": ["parameters"]}),
    code("params = guard.check(globals(), {\"study\": str, \"profile\": (str, type(None)), \"runs_root\": str, \"results_root\": str,\n"
         "                                 \"metric\": str, \"compare\": str, \"baseline\": str, \"rows\": list})\n"
         "everything = collect_runs(runs_root, results_root)\n"
         "profile = profile or results.fullest_profile(everything, study)\n"
         "runs = everything[(everything[\"study\"] == study) & (everything[\"profile\"] == profile)]\n"
         "glue(\"profile\", profile, display=False)\n"
         "status_counts = runs[\"status\"].value_counts()\n"
         "glue(\"n_runs\", len(runs), display=False)\n"
         "glue(\"n_complete\", int(status_counts.get(\"complete\", 0)), display=False)\n"
         "status_counts.to_frame(\"runs\")"),
    md("## Accuracy, mean ± std over seeds\n\nThe best mean of each row is in bold; n is the number of seeds."),
    code("accuracy = tables.mean_std_table(runs, metric, index=rows, columns=compare, best_axis=1)\n"
         "glue(\"accuracy_table\", accuracy, display=False)\n"
         "accuracy"),
    md("## Paired differences against the baseline\n\n"
       "Each run is paired with the baseline run of the same seed (same initialisation and data order). "
       "Green is better, red worse, in percentage points; `within_noise` marks a mean difference smaller "
       "than the baseline's own seed-to-seed standard deviation."),
    code("differences = tables.paired_differences(runs, metric, compare, baseline, rows)\n"
         "differences[\"within_noise\"] = tables.within_noise(differences)\n"
         "styled = tables.style_differences(differences[[\"mean\"]].unstack(compare)[\"mean\"])\n"
         "glue(\"difference_table\", styled, display=False)\n"
         "glue(\"n_within_noise\", int(differences[\"within_noise\"].sum()), display=False)\n"
         "display(styled)\n"
         "differences.round(2)"),
    md("## Curves\n\nMean over seeds with a 95 % confidence band (bootstrap), one panel per metric."),
    code("histories = collect_histories(runs=runs)\n"
         "figures = {}\n"
         "for group, frame in histories.groupby(rows[0]):\n"
         "    figures[group] = plots.training_curves(frame, metrics=(\"train_acc\", \"val_acc\"), hue=compare)\n"
         "    figures[group].suptitle(f\"{rows[0]} = {group}\")\n"
         "    glue(f\"curves_{group}\", figures[group], display=False)\n"
         "list(figures)"),
]
# The book shows results; the code stays one click away.
for cell in cells:
    if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
        cell.metadata.setdefault("tags", []).append("hide-input")
write_template(cells, "notebooks/grid_report.ipynb")
