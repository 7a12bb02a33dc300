"""Evidence for the errata of study 1 (input normalization when fine-tuning), computed from data.

The earlier work's known defects (../shared/STUDIES.md, study 1) are stated in
the book together with numbers that show them: Table 1's Tiny ImageNet row
as BGR loading produces it, how far plain /255 scaling (their "minmax") is
from per-image min-max, images where per-image standardization without eps
divides by zero, what zero padding does to per-image statistics, what picking
the best test epoch adds, and how the published single-seed differences
compare with the seed-to-seed spread. Besides: where each data set ranks
by its distance from ImageNet's statistics, published and recomputed (the
argument the BGR row carried), the input sizes a grid's and a profile's runs
use against their checkpoints', the checkpoint files runs started from, and
how often the published table puts a setting last. Tables are DataFrames
ready to display, sentences strings. The numbers about a data set's images
come from its :class:`~normtest_lib.stats.image_checks.ImageChecks`, computed
over the whole training split by ``normtest stats`` and committed with its
statistics record.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...report.stats_tables import distance_from_standard, stats_columns, stats_row
from ...report.tables import aggregate_seeds
from ...stats.channel import ChannelStats
from ...stats.image_checks import ImageChecks
from ...stats.reference import PUBLISHED_TABLE1

PP = 100.0  # fractions to percentage points


def bgr_table1_rows(
    rgb: ChannelStats, bgr: ChannelStats, published: ChannelStats | None = PUBLISHED_TABLE1.get("tiny_imagenet_200")
) -> pd.DataFrame:
    """Table 1's ``pretrain`` row of a data set loaded in RGB and in BGR, beside the published row.

    ``rgb`` and ``bgr`` are the per-channel mean and std of the images
    standardized with the pretraining statistics, loaded in RGB order and in
    reversed order as OpenCV's loading did in the earlier work (its "R" column
    holds the blue channel standardized with red's statistics): a record's
    ``table1["pretrain"]`` and ``image_checks.bgr_pretrain``. The column
    ``max |diff| to published`` is the largest absolute difference of a row's
    six numbers to the published ones; if the BGR row is the one close to the
    published row, the published row was computed on BGR images.
    """
    rows = {"RGB (correct)": rgb, "BGR (the earlier work's loading)": bgr}
    if published is not None:
        rows["published"] = published
    frame = pd.DataFrame([stats_row(s) for s in rows.values()], index=list(rows), columns=stats_columns(), dtype=float)
    frame.index.name = "images loaded as"
    diff = np.nan
    if published is not None:
        diff = (frame.iloc[:, :6] - stats_row(published)).abs().max(axis=1)
        diff["published"] = np.nan
    frame[("max |diff| to published", "")] = diff
    return frame


def unit_vs_minmax(checks: Mapping[str, ImageChecks]) -> pd.DataFrame:
    """How far plain /255 scaling (the earlier work's "minmax", our ``unit``) is from per-image min-max.

    One row per data set of ``checks``:

    - ``share spanning 0..255``: images whose every channel already has min 0
      and max 255; only for them do the two settings give the same input;
    - ``mean channel range``: mean over images and channels of (max - min) / 255;
      per-image min-max stretches each channel by 1 / this range;
    - ``mean |unit - minmax| per pixel``: mean absolute difference between the
      two settings' outputs, over all pixel values ([0, 1] units).
    """
    rows = [
        {
            "images": c.n_images,
            "share spanning 0..255": c.spanning_full_range / c.n_images,
            "mean channel range": c.mean_channel_range,
            "mean |unit - minmax| per pixel": c.mean_abs_unit_minus_minmax,
        }
        for c in checks.values()
    ]
    return pd.DataFrame(rows, index=pd.Index(list(checks), name="dataset"))


def constant_channel_images(checks: Mapping[str, ImageChecks]) -> pd.DataFrame:
    """Images with a constant channel, where per-image standardization without eps divides 0 by 0.

    One row per data set of ``checks``: how many images have at least one
    channel whose spatial std is zero (min == max), their share, and whether
    our ``instance`` setting (with its eps) and the same setting with eps = 0
    give finite outputs on them. A data set without such an image was checked
    on a synthetic constant image (every pixel 128), so the columns always say
    something; ``checked on`` says which it was.
    """
    rows = [
        {
            "images": c.n_images,
            "with a constant channel": c.constant_channel,
            "share": c.constant_channel / c.n_images,
            "instance output finite": c.instance_finite,
            "finite without eps": c.instance_finite_without_eps,
            "checked on": c.constant_checked_on,
        }
        for c in checks.values()
    ]
    return pd.DataFrame(rows, index=pd.Index(list(checks), name="dataset"))


def padding_bias(checks: ImageChecks) -> pd.DataFrame:
    """Per-image channel statistics over the image itself vs over the image zero-padded by ``checks.pad``.

    The earlier work padded before its per-image settings saw the image, so
    their statistics included the black border of a pad-4 random crop; our
    engine takes them from the un-padded image. Rows: the mean over images of
    the per-image channel mean and (population) std, taken both ways ([0, 1]
    scale), and the mean relative change padded / own - 1 of each per-image
    value, over the image-channels whose own value is positive (a relative
    change of a zero mean or std is undefined).
    """
    c = checks
    rows = {
        "over the image": [*c.own_mean, *c.own_std],
        f"over the image zero-padded by {c.pad}": [*c.padded_mean, *c.padded_std],
        "mean relative change (padded / own - 1)": [*c.padded_mean_change, *c.padded_std_change],
    }
    frame = pd.DataFrame(list(rows.values()), index=list(rows), columns=stats_columns(), dtype=float)
    frame.index.name = "per-image statistics taken"
    return frame


def selection_bias(runs: pd.DataFrame, histories: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """What choosing the epoch on the test set adds, per group of ``keys``, in percentage points.

    For each complete run: the best test accuracy over its epochs (the
    earlier work's reported number) minus the test accuracy at the epoch of
    best validation accuracy (an honest selection). Runs whose history has no
    per-epoch test accuracy are skipped. Columns: the mean over runs, its
    sample std and the number of runs. A positive mean is optimism that
    test-set selection builds into every published number.
    """
    keys = list(keys)
    complete = runs[runs["status"] == "complete"]
    best_test = histories.groupby("run_id")["test_acc"].max()  # max skips NaN epochs; all NaN gives NaN
    gap = (complete["run_id"].map(best_test) - complete["test_acc_at_best_val"]) * PP
    measured = complete.assign(gap=gap).dropna(subset=["gap"])
    grouped = measured["gap"].groupby([measured[k] for k in keys])
    frame = pd.DataFrame({"mean (pp)": grouped.mean(), "std (pp)": grouped.std(ddof=1), "n": grouped.count()})
    frame.columns.name = "best test acc over epochs - test acc at best val"
    return frame


def selection_sentence(runs: pd.DataFrame, histories: pd.DataFrame) -> str:
    """One sentence on what selecting the epoch on test would have added to these runs, and why."""
    complete = runs[runs["status"] == "complete"]
    tested = histories.dropna(subset=["test_acc"])
    best_test = tested.groupby("run_id")["test_acc"].max()
    measured = complete[complete["run_id"].isin(best_test.index)]
    if measured.empty:
        return "None of these runs recorded test accuracy every epoch, so the selection cannot be compared here."
    gap = (measured["run_id"].map(best_test) - measured["test_acc_at_best_val"]) * PP
    last_epoch = tested.groupby("run_id")["epoch"].max()
    best_epoch = pd.to_numeric(measured.get("best_epoch", pd.Series(float("nan"), index=measured.index)))
    at_last = int((best_epoch == measured["run_id"].map(last_epoch)).sum())
    sentence = (
        f"Over {len(measured)} runs, choosing the epoch on the test set would have added {gap.mean():.2f} points "
        f"on average (at most {gap.max():.2f}); validation chose the last epoch in {at_last} of them."
    )
    if at_last == len(measured):
        sentence += (
            " Accuracy still rose every epoch of this short schedule, so both choices coincide and these runs "
            "cannot measure how optimistic a test-selected number is; a longer schedule can."
        )
    return sentence


def seed_spread_vs_published(
    runs: pd.DataFrame,
    metric: str,
    setting_column: str,
    index: Sequence[str],
    published: pd.DataFrame,
    baseline: str = "finetune",
) -> pd.DataFrame:
    """The published single-seed differences between settings set against our seed-to-seed spread.

    Row ``published |difference to finetune| (pp)``: per (model, dataset) cell
    of ``published`` (:func:`published_results` ``("input_normalization")``,
    metric ``test_acc`` as fractions), every other setting's value minus the
    ``baseline``'s, absolute, in percentage points. Row ``our seed-to-seed std
    (pp)``: the sample std of ``metric`` (fractions) over the seeds of each
    group of ``index`` + ``setting_column`` among complete ``runs`` (groups of
    one run have none). Columns: median, max and n of each; ``share below our
    median seed std`` is the share of published differences smaller than our
    median std, i.e. differences one seed cannot tell from noise.
    """
    accuracy = published[published["metric"] == "test_acc"]
    table = accuracy.pivot_table(index=["model", "dataset"], columns="setting", values="value")
    differences = table.drop(columns=baseline).sub(table[baseline], axis=0).abs().stack().dropna() * PP
    spread = aggregate_seeds(runs, metric, [*index, setting_column])["std"].dropna() * PP
    median_std = spread.median() if len(spread) else np.nan
    share = float((differences < median_std).mean()) if len(differences) and len(spread) else np.nan
    rows = {
        f"published |difference to {baseline}| (pp)": _summary(differences) + [share],
        "our seed-to-seed std (pp)": _summary(spread) + [np.nan],
    }
    frame = pd.DataFrame(list(rows.values()), index=list(rows), columns=["median", "max", "n", "share below our median seed std"])
    frame["n"] = frame["n"].astype(int)
    return frame


def _summary(values: pd.Series) -> list[float]:
    if len(values) == 0:
        return [np.nan, np.nan, 0]
    return [float(values.median()), float(values.max()), len(values)]


def grid_input_sizes(profiles: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Per grid profile (name -> its runs' parameters): how its pretrained runs size and standardize their images.

    Columns: runs at the data set's native size (``input_size`` unset: 32 or
    64 px, as the earlier work fed its 224 px checkpoints), runs at the
    checkpoint's own size (``input_size: pretrained``), and of those the runs
    that also use the checkpoint's statistics (``input_norm: pretrain``): the
    checkpoint's whole recorded preprocessing. From-scratch runs are left out.
    """
    rows = {}
    for name, runs in profiles.items():
        pretrained = [run for run in runs if str(run.get("pretrained", "none")) != "none"]
        at_checkpoint = [run for run in pretrained if run.get("input_size") == "pretrained"]
        rows[name] = {
            "native size": sum(run.get("input_size") is None for run in pretrained),
            "the checkpoint's size": len(at_checkpoint),
            "the checkpoint's size and statistics": sum(run.get("input_norm") == "pretrain" for run in at_checkpoint),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("profile (pretrained runs)")


def trained_input_sizes(runs: pd.DataFrame) -> pd.Series:
    """Each run's input size in px as trained: its summary's, else its parameter's (NaN where neither says).

    A summary key that clashes with a parameter is read as ``summary_<key>``
    (:func:`~normtest_lib.report.results.read_run`), so the summary's size is
    ``summary_input_size`` where the run's parameters name ``input_size`` too.
    """
    missing = pd.Series(np.nan, index=runs.index)
    summary = pd.to_numeric(runs.get("summary_input_size", missing), errors="coerce")
    parameter = pd.to_numeric(runs.get("input_size", missing), errors="coerce")
    return summary.fillna(parameter).rename("input size (px)")


def pretraining_sizes_table(pretraining: pd.DataFrame, finetuning: pd.DataFrame) -> pd.DataFrame:
    """The input sizes a profile pretrained and fine-tuned at: one row each, the sizes seen and the runs."""
    rows = {}
    for name, runs in (("pretraining run", pretraining), ("fine-tuning runs", finetuning)):
        sizes = trained_input_sizes(runs).dropna().astype(int)
        rows[name] = {"input size (px)": ", ".join(str(s) for s in sorted(sizes.unique())) or "–", "runs": len(runs)}
    return pd.DataFrame.from_dict(rows, orient="index")


def farthest_from_imagenet(computed: Mapping[str, ChannelStats], published: Mapping[str, ChannelStats] = PUBLISHED_TABLE1) -> pd.DataFrame:
    """How far each data set sits from zero mean and unit std after ImageNet's statistics: published and computed.

    ``computed`` maps a published data set's name to its training images'
    statistics after ``pretrain`` standardization, computed here in RGB.
    Columns: the distance (:func:`~normtest_lib.report.stats_tables.distance_from_standard`)
    of the published row, of the computed row (NaN where the data is not here),
    and the rank of each among the four sets when the computed rows replace the
    published ones (1 = farthest). The earlier work's argument was that Tiny
    ImageNet ranks first.
    """
    def distances(rows: Mapping[str, ChannelStats]) -> pd.Series:
        index = pd.MultiIndex.from_arrays([list(rows), ["pretrain"] * len(rows)], names=["dataset", "setting"])
        frame = pd.DataFrame([stats_row(s) for s in rows.values()], index=index, columns=stats_columns(), dtype=float)
        return distance_from_standard(frame, "pretrain")

    table = pd.DataFrame({"published row": distances(published)})
    table["computed here (RGB)"] = distances(computed).reindex(table.index) if computed else np.nan
    table["rank, published rows"] = table["published row"].rank(ascending=False).astype(int)
    replaced = table["computed here (RGB)"].fillna(table["published row"])
    table["rank, computed rows where here"] = replaced.rank(ascending=False).astype(int)
    return table


def closest_row_sentence(bgr_rows: pd.DataFrame) -> str:
    """Which row of :func:`bgr_table1_rows` lies closest to the published one, and by how much."""
    column = ("max |diff| to published", "")
    differences = bgr_rows[column].dropna()
    if differences.empty:
        return "There is no published row to compare with."
    closest = differences.idxmin()
    others = "; ".join(f"{name}: {value:.3f}" for name, value in differences.drop(closest).items())
    return f"The row closest to the published one is **{closest}**, at most {differences[closest]:.3f} from it ({others})."


def model_source_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model source the runs record (``model_source``): how many runs, and the distinct SHA-256 of the
    checkpoint file they started from (``model_source_sha256``; first 12 hex digits), so a reader can check
    that runs compared with each other started from the same weights."""
    missing = pd.Series("not recorded", index=runs.index)
    source = runs.get("model_source", missing).fillna("not recorded")
    digest = runs.get("model_source_sha256", pd.Series(np.nan, index=runs.index))
    rows = {}
    for name, group in digest.groupby(source.to_numpy(), sort=True):
        hashes = sorted(group.dropna().astype(str).unique())
        rows[name] = {"runs": len(group), "distinct SHA-256": len(hashes), "SHA-256": ", ".join(h[:12] for h in hashes) or "–"}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["runs", "distinct SHA-256", "SHA-256"]).rename_axis("model source")


def farthest_sentence(table: pd.DataFrame, dataset: str = "tiny_imagenet_200") -> str:
    """Where ``dataset`` ranks in :func:`farthest_from_imagenet`'s table, by the published rows and by ours."""
    if pd.isna(table.loc[dataset, "computed here (RGB)"]):
        return f"Without `{dataset}`'s images or its statistics record its rank cannot be recomputed."
    parts = []
    for rows, ranks in (("the published rows", table["rank, published rows"]),
                        ("the rows computed here where the data is", table["rank, computed rows where here"])):
        farthest = ranks.idxmin()
        rank = "" if farthest == dataset else f", and `{dataset}` ranks {ranks[dataset]} of {len(table)}"
        parts.append(f"by {rows} the farthest is `{farthest}`{rank}")
    return f"{parts[0][0].upper()}{parts[0][1:]}; {parts[1]}."


def lowest_in_published(published: pd.DataFrame, setting: str, metric: str = "test_acc") -> tuple[int, int]:
    """In how many (model, dataset) cells of the published results ``setting`` has the lowest ``metric``, of how many."""
    values = published[published["metric"] == metric].pivot_table(index=["model", "dataset"], columns="setting", values="value")
    values = values.dropna(subset=[setting])
    return int((values[setting] <= values.min(axis=1)).sum()), len(values)
