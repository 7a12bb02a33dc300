"""Evidence for the errata of study 1 (input normalization when fine-tuning), computed from data.

The earlier work's known defects (../shared/STUDIES.md, study 1) are stated in
the book together with numbers that show them: Table 1's Tiny ImageNet row
as BGR loading produces it, how far plain /255 scaling (their "minmax") is
from per-image min-max, images where per-image standardization without eps
divides by zero, what the pad-and-crop augmentation puts into per-image
statistics (the share of black pixels in each crop it can draw, and the
statistics averaged over those crops), what its misspelt ``instance`` setting
computed instead (:func:`earlier_setting_table`, a re-creation of the dispatch
in its ``datasets/augmentation.py``), what picking the best test epoch adds,
and how the published single-seed differences compare with the seed-to-seed
spread. Besides: where each data set ranks by its distance from ImageNet's
statistics, the published rows and the rows computed here each ranked among
their own kind (the argument the BGR row carried), the input sizes a grid's and a profile's runs
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
import torch

from ...report.stats_tables import distance_from_standard, stats_columns, stats_row
from ...report.tables import aggregate_seeds
from ...stats.channel import ChannelStats
from ...stats.image_checks import ImageChecks
from ...stats.reference import IMAGENET, PUBLISHED, PUBLISHED_TABLE1

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


def crop_black_shares(size: tuple[int, int], pad: int) -> np.ndarray:
    """The share of padded (black) pixels in every crop a pad-``pad`` random crop can draw from an image of ``size``.

    The image (height, width) is zero-padded by ``pad`` on every side and cropped back to its own
    size at offset (dy, dx), each of 0..2 pad; torchvision's ``RandomCrop`` (the earlier work's) and our
    engine draw every offset with equal probability. Built by padding an all-ones mask and cropping it
    at each offset, so nothing here assumes a formula: returns (2 pad + 1, 2 pad + 1), [dy, dx].
    """
    height, width = size
    mask = np.pad(np.ones((height, width)), pad)  # 1 where the image is, 0 on the padding
    offsets = range(2 * pad + 1)
    return np.array([[1.0 - mask[dy : dy + height, dx : dx + width].mean() for dx in offsets] for dy in offsets])


def crop_black_table(sizes: Mapping[str, tuple[int, int]], pad: int = 4) -> pd.DataFrame:
    """Per image size (label -> (height, width)): the black share of the whole padded image, and of the crops
    a pad-``pad`` random crop draws from it, over all its equally likely offsets (the mean is the expectation)."""
    rows = {}
    for label, (height, width) in sizes.items():
        shares = crop_black_shares((height, width), pad)
        rows[label] = {
            "the whole padded image": 1.0 - height * width / ((height + 2 * pad) * (width + 2 * pad)),
            "crop: least (centred)": float(shares.min()),
            "crop: mean over the offsets": float(shares.mean()),
            "crop: most (a corner)": float(shares.max()),
            "offsets": shares.size,
        }  # fmt: skip
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns.name = "share of black pixels"
    return frame.rename_axis(f"image (padded by {pad})")


def crop_black_sentence(table: pd.DataFrame, row: str) -> str:
    """What :func:`crop_black_table`'s ``row`` says in words: the crops' mean and largest black share, and the
    whole padded image's, which this entry's first version measured in place of the crops."""
    shares = table.loc[row]
    whole, mean, most = shares["the whole padded image"], shares["crop: mean over the offsets"], shares["crop: most (a corner)"]
    return (
        f"For {row} images a crop is {100 * mean:.1f} % black on average and at most {100 * most:.1f} % (a corner "
        f"crop); the whole padded image, which this entry's first version measured instead, is {100 * whole:.1f} % "
        f"black, {whole / mean:.1f} times the mean crop's share."
    )


def padding_bias(checks: ImageChecks) -> pd.DataFrame:
    """Per-image channel statistics over the image itself vs over the crops a pad-``checks.pad`` random crop draws.

    The earlier work padded and cropped before its per-image settings saw the image, so their
    statistics were those of the crop, which holds part of the black border; our engine takes them
    from the un-padded image. Rows: the mean over images of the per-image channel mean and
    (population) std ([0, 1] scale), over the image and averaged over every equally likely crop of
    it, and the mean relative change crop / own - 1 of each per-image value, over the image-channels
    whose own value is positive (a relative change of a zero mean or std is undefined). A record
    written before the crops were measured has none: a ValueError says to regenerate it.
    """
    c = checks
    if not c.has_crops:
        raise ValueError("this statistics record predates the crop measurements; regenerate it with `make dataset-stats`")
    rows = {
        "over the image": [*c.own_mean, *c.own_std],
        f"over its crops (padded by {c.pad}, cropped back to its size; mean over the offsets)": [*c.crop_mean, *c.crop_std],
        "mean relative change (crop / own - 1)": [*c.crop_mean_change, *c.crop_std_change],
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
    of the published row and of the computed row (NaN where the data is not here), and each kind's
    rank among its own rows only (1 = farthest): published rows against published rows, rows
    computed here against rows computed here (NaN where a set was not computed). A published row
    never stands in for a missing computed one, since the published Tiny ImageNet row is the one in
    question. The earlier work's argument was that Tiny ImageNet ranks first.
    """
    def distances(rows: Mapping[str, ChannelStats]) -> pd.Series:
        index = pd.MultiIndex.from_arrays([list(rows), ["pretrain"] * len(rows)], names=["dataset", "setting"])
        frame = pd.DataFrame([stats_row(s) for s in rows.values()], index=index, columns=stats_columns(), dtype=float)
        return distance_from_standard(frame, "pretrain")

    table = pd.DataFrame({"published row": distances(published)})
    table["computed here (RGB)"] = distances(computed).reindex(table.index) if computed else np.nan
    table["rank among published rows"] = table["published row"].rank(ascending=False).astype(int)
    table["rank among rows computed here"] = table["computed here (RGB)"].rank(ascending=False).astype("Int64")
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
    """Where ``dataset`` ranks in :func:`farthest_from_imagenet`'s table: among the published rows, and among the
    rows computed here only (which data sets those are, and which are not on this machine)."""
    published = table["rank among published rows"]
    farthest = published.idxmin()
    rank = "" if farthest == dataset else f", and `{dataset}` ranks {published[dataset]} of {len(table)}"
    first = f"Among the published rows the farthest is `{farthest}`{rank}"
    here = table["rank among rows computed here"].dropna()
    if dataset not in here.index:
        return f"{first}. Without `{dataset}`'s images or its statistics record its rank cannot be recomputed."
    names = _and([f"`{name}`" for name in here.index])
    missing = [f"`{name}`" for name in table.index if name not in here.index]
    absent = _and(missing)
    nearest = here.idxmin()
    ranked = f"`{nearest}` is the farthest" if nearest == dataset else f"`{dataset}` ranks {here[dataset]} of {len(here)}"
    sentence = f"{first}. Among the {len(here)} rows computed here in RGB ({names}), {ranked}"
    if absent:
        verb = "is" if len(missing) == 1 else "are"
        sentence += f"; {absent} {verb} not on this machine, and no published row is ranked among the computed ones"
    return sentence + "."


def _and(words: Sequence[str]) -> str:
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + f" and {words[-1]}"


def lowest_in_published(published: pd.DataFrame, setting: str, metric: str = "test_acc") -> tuple[int, int]:
    """In how many (model, dataset) cells of the published results ``setting`` has the lowest ``metric``, of how many."""
    values = published[published["metric"] == metric].pivot_table(index=["model", "dataset"], columns="setting", values="value")
    values = values.dropna(subset=[setting])
    return int((values[setting] <= values.min(axis=1)).sum()), len(values)


# --- What the earlier work's misspelt ``instance`` setting computed (re-created from its file) ----------------------

# Its setting names, as its command line offered them, and the statistics its ``main.py`` handed the data
# pipeline for each: only ``finetune`` (the data set's typed statistics) and ``pretrain`` (ImageNet's) got any.
EARLIER_SETTINGS = ("finetune", "pretrain", "instance", "minmax")
MISSPELT_INSTANCE = "instnace"  # the name its dispatch compared against: two letters swapped


def earlier_setting_branch(setting: str) -> str:
    """Which transform the earlier work's dispatch (``normalize_setting`` in its ``datasets/augmentation.py``,
    re-created here from that file) appended for ``setting``, after its images were scaled to [0, 1]."""
    if setting == "minmax":
        return "none: the pixels stay / 255"
    if setting == MISSPELT_INSTANCE:
        return "its per-image standardization"
    return "torchvision's Normalize with the run's mean and std"


def earlier_statistics(setting: str, dataset: str = "cifar10") -> ChannelStats | None:
    """The mean and std the earlier work's ``main.py`` set for ``setting`` (from its typed statistics), else None."""
    return {"finetune": PUBLISHED[dataset], "pretrain": IMAGENET}.get(setting)


def earlier_setting_table(image: torch.Tensor, dataset: str = "cifar10") -> pd.DataFrame:
    """Each earlier setting name through the re-created dispatch, applied to ``image`` (uint8 3 x H x W).

    Columns: the branch the name reaches, the statistics it was given, and what came out: the output's
    mean and std over the image, or the error torchvision raised. ``instance`` never matches the misspelt
    name, so it reaches ``Normalize`` with no statistics, which fails on the first image: the committed code
    could not train the ``instance`` setting at all. The last row is the branch the typo skipped, reached
    only by the misspelt name: per image and channel, mean subtracted and divided by the unbiased std with
    no eps, as that file defines it.
    """
    from torchvision import transforms

    x = image.to(torch.float32).div(255.0)
    rows = {}
    for name in (*EARLIER_SETTINGS, MISSPELT_INSTANCE):
        branch, stats = earlier_setting_branch(name), earlier_statistics(name, dataset)
        try:
            if name == "minmax":
                out = x
            elif name == MISSPELT_INSTANCE:
                out = (x - x.mean(dim=(1, 2), keepdim=True)) / x.std(dim=(1, 2), keepdim=True)
            else:
                out = transforms.Normalize(stats.mean if stats else None, stats.std if stats else None)(x)
            result = f"mean {_rounded(out.mean())}, std {_rounded(out.std(unbiased=False))}"
        except (TypeError, ValueError, RuntimeError) as error:  # what a training run would have stopped on
            result = f"{type(error).__name__}: {error}"
        label = name + (" (the misspelt name)" if name == MISSPELT_INSTANCE else "")  # an HTML cell: no backticks
        given = "none" if stats is None else ("ImageNet's" if name == "pretrain" else f"{dataset}'s typed ones")
        rows[label] = {"branch reached": branch, "statistics given": given, "output on the example image": result}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting name")


def _rounded(value: torch.Tensor) -> str:
    """Three decimals, without the "-0.000" float rounding noise gives a mean of zero."""
    return f"{round(float(value), 3) + 0.0:.3f}"
