"""The layer benchmark's figures (``benchmarks/layers.py --json``) as a table and sentences.

Eager figures (``images_per_second``) are what earlier versions reported; files written since
issue 20 add ``compiled_images_per_second`` (``torch.compile``, in the engine's default memory
format), which the table shows beside them with its ratio to ``torch_bn``'s eager figure.

Besides each variant's throughput and its ratio to ``torch_bn``, the table splits out
what normalization itself costs: the network without normalization (``none``) runs the same
convolutions, so ``batch * (1 / ips_variant - 1 / ips_none)`` is the time per training step
that the variant's normalization adds.

Whether those figures are for the network a study trains is computed, not assumed: the
benchmark records the network and batch it measured, and :func:`network_sentence` compares them
with every run of the chapter's profile. The profile's own cost, measured on the very network,
data and batch it trains (``benchmarks/profile_cost.py``), is read by :func:`load_profile_cost`
and shown by :func:`profile_cost_table` and :func:`profile_cost_sentence`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from pandas.io.formats.style import Styler

# Every run a profile trains, read from its grid (the reproducibility appendix counts them with it too).
from .reproducibility import profile_params  # noqa: F401  (speed.profile_params: what the chapters call)

REFERENCE = "torch_bn"
WITHOUT_NORMALIZATION = "none"
BENCHMARK_FOLDER = Path("benchmarks/results")
PROFILE_COST_SCRIPT = "benchmarks/profile_cost.py"


def load_benchmark(path: str | Path) -> dict[str, Any] | None:
    """The benchmark's JSON, or None when the file is not there."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def normalization_ms_per_step(bench: Mapping[str, Any]) -> pd.Series:
    """Per variant: milliseconds per training step added over the network without normalization."""
    ips = pd.Series(bench["images_per_second"], dtype=float)
    if WITHOUT_NORMALIZATION not in ips:
        return pd.Series(float("nan"), index=ips.index)
    return 1000.0 * bench["batch"] * (1.0 / ips - 1.0 / ips[WITHOUT_NORMALIZATION])


def speed_table(bench: Mapping[str, Any]) -> pd.DataFrame:
    """Images per second, ratio to ``torch_bn``, share of the step in the forward pass and the
    normalization's own milliseconds per step, one row per variant; with compiled figures in
    the file, compiled images per second and their ratio to ``torch_bn``'s eager figure too; with the
    engine's mode per variant (``engine_mode``: how the engine trains it in a long run), that mode."""
    columns = {
        "images/s": pd.Series(bench["images_per_second"], dtype=float),
        f"ratio to {REFERENCE}": pd.Series(bench["ratio_to_torch_bn"], dtype=float),
        "forward share of the step": pd.Series(bench.get("forward_share", {}), dtype=float),
        "normalization ms/step": normalization_ms_per_step(bench),
    }
    if "compiled_images_per_second" in bench:
        compiled = pd.Series(bench["compiled_images_per_second"], dtype=float)
        columns["compiled images/s"] = compiled
        columns[f"compiled, ratio to {REFERENCE} eager"] = compiled / bench["images_per_second"][REFERENCE]
    if "engine_mode" in bench:
        columns["a long run trains"] = pd.Series(bench["engine_mode"], dtype=object).str.replace("_", " ")
    return pd.DataFrame(columns).rename_axis("variant")


# The kinds of name a speed table's variants are (glossary_links.SECTIONS): a normalization layer (study 2's
# `torch_bn`, `gn:c/4`) or a study's label (study 3's `convnorm+bn`).
VARIANT_KINDS = ("norm_layer", "study_labels")


def style_speed_table(table: pd.DataFrame) -> Styler:
    """:func:`speed_table` (or rows of it) for a page: images per second as whole numbers (the repeats
    differ in the units), ratios and shares with two decimals, milliseconds with one, a dash where missing;
    captioned with links to the glossary sections that define the variants' names."""
    from .glossary_links import caption_note
    from .tables import MISSING_TEXT

    def digits(column: str) -> str:
        if column.endswith("images/s"):
            return "{:,.0f}"
        return "{:.1f}" if column.endswith("ms/step") else "{:.2f}"

    numeric = [column for column in table.columns if pd.api.types.is_numeric_dtype(table[column])]
    styler = table.style.format({column: digits(column) for column in numeric}, na_rep=MISSING_TEXT)
    return styler.set_caption(f"Training throughput per variant. {caption_note(VARIANT_KINDS)}")


def compiled_sentence(bench: Mapping[str, Any], variants: Iterable[str], target: float) -> str:
    """Whether each of ``variants``, compiled, reaches ``target`` times ``torch_bn``'s eager
    throughput, and which is slowest; empty for a file without compiled figures."""
    if "compiled_images_per_second" not in bench:
        return ""
    ratios = speed_table(bench)[f"compiled, ratio to {REFERENCE} eager"].reindex(list(variants)).dropna()
    if ratios.empty:
        return ""
    slowest = ratios.idxmin()
    verdict = "meets" if ratios.min() >= target else "misses"
    return (
        f"Compiled with `torch.compile`, the slowest of {', '.join(f'`{v}`' for v in ratios.index)} is `{slowest}` "
        f"at {ratios[slowest]:.2f}x `{REFERENCE}`'s eager images per second, so the set {verdict} the target of "
        f"{target:.2f}x."
    )


def speed_sentence(bench: Mapping[str, Any], variants: Iterable[str], target: float) -> str:
    """Whether each of ``variants`` reaches ``target`` times ``torch_bn``'s throughput, which is
    slowest, and what its normalization costs per step against ``torch_bn``'s."""
    table = speed_table(bench)
    ratios = table[f"ratio to {REFERENCE}"].reindex(list(variants)).dropna()
    if ratios.empty:
        return "The benchmark file has none of these variants."
    slowest = ratios.idxmin()
    verdict = "meets" if ratios.min() >= target else "misses"
    where = f"Measured on {bench['device_name']} ({bench['threads']} threads, batch {bench['batch']})"
    text = (
        f"{where}: the slowest of {', '.join(f'`{v}`' for v in ratios.index)} is `{slowest}` at "
        f"{ratios[slowest]:.2f}x `{REFERENCE}`'s images per second, so the set {verdict} the target of {target:.2f}x."
    )
    cost = table["normalization ms/step"]
    if pd.notna(cost.get(slowest)) and pd.notna(cost.get(REFERENCE)) and cost[REFERENCE] > 0:
        text += (
            f" Against the same network without normalization, `{slowest}` adds {cost[slowest]:.0f} ms per step "
            f"and `{REFERENCE}` {cost[REFERENCE]:.0f} ms ({cost[slowest] / cost[REFERENCE]:.1f}x)."
        )
    return text


# --- which network the figures are for ---------------------------------------------------------


def network_name(model: str, depth_n: int | None = None) -> str:
    """A network as ``benchmarks/layers.py`` records it: ``cifar_resnet n=2`` for a model whose depth
    ``depth_n`` sets, else the model's own name (``depth_n`` is set, and ignored, for every run)."""
    from ..errors import ModelError
    from ..models.registry import get_model_spec

    try:
        uses_depth_n = get_model_spec(model).uses_depth_n
    except ModelError:  # a model this version no longer registers is still named, as it was recorded
        uses_depth_n = False
    return f"{model} n={depth_n}" if uses_depth_n and depth_n is not None else model


def _param(params: Mapping[str, Any], key: str) -> Any:
    """``params[key]``, or the run schema's default where a grid leaves the key out."""
    if key in params:
        return params[key]
    from ..config import RunConfig

    return RunConfig.model_fields[key].get_default(call_default_factory=True)


def trained_networks(params: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, int]]:
    """How many runs train each (network as the benchmark names it, batch size)."""
    return Counter(
        (network_name(_param(run, "model"), _param(run, "depth_n")), int(_param(run, "batch_size"))) for run in params
    )


def benchmark_variants(params: Iterable[Mapping[str, Any]], bench: Mapping[str, Any]) -> list[str]:
    """The benchmark's variants that ``params`` (runs) train, in the benchmark's order: a run's
    ``norm_layer``, or with a ConvNorm convolution ``convnorm`` (no normalization layer) or
    ``convnorm+bn`` (with ``torch_bn``), as ``benchmarks/layers.py`` names them."""
    trained = set()
    for run in params:
        norm, conv = _param(run, "norm_layer"), str(_param(run, "conv_layer"))
        if conv.startswith("convnorm"):  # convnorm:STEPS sets its averaging, not its arithmetic
            with_norm = "bn" if norm == REFERENCE else norm
            norm = "convnorm" if norm == WITHOUT_NORMALIZATION else f"convnorm+{with_norm}"
        trained.add(norm)
    return [variant for variant in bench["images_per_second"] if variant in trained]


def _runs(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def network_sentence(bench: Mapping[str, Any], params: Sequence[Mapping[str, Any]] | None, profile: str) -> str:
    """Which network and batch the benchmark measured, and whether the runs of ``profile``
    (``params``: :func:`profile_params`) train that network at that batch; where they, or some of
    them, train another depth, model or batch, which and how many."""
    if "model" not in bench:
        return f"The benchmark file does not record which network it measured (batch {bench['batch']})."
    measured = (bench["model"], int(bench["batch"]))
    text = f"The benchmark measured `{measured[0]}` at batch {measured[1]}"
    trained = trained_networks(params or [])
    total = sum(trained.values())
    if not total:
        return f"{text}; the `{profile}` profile's runs could not be read from its grid file to compare."

    def others() -> str:
        # The same network at another batch is said as such: the depth and the model agree, only the batch does not.
        rest = sorted((-count, network, batch) for (network, batch), count in trained.items()
                      if (network, batch) != measured)  # most runs first
        return "; ".join(
            f"{'the same network' if network == measured[0] else f'`{network}`'} at batch {batch}"
            + (f" ({_runs(-count)})" if len(rest) > 1 else "")  # one group: the sentence has given its count
            for count, network, batch in rest
        )

    same = trained.get(measured, 0)
    if same == total:
        every = "the one run" if total == 1 else f"all {total} runs"
        return f"{text}: the network and batch that {every} of the `{profile}` profile train."
    if same:
        return (
            f"{text}: the network and batch of {same} of the {total} runs of the `{profile}` profile; "
            f"the other {total - same} train {others()}, which it did not measure."
        )
    return f"{text}, which is not what the `{profile}` profile trains: its {_runs(total)} train {others()}."


# --- what a profile costs (benchmarks/profile_cost.py) -------------------------------------------


def profile_cost_path(study: str, profile: str, folder: str | Path = BENCHMARK_FOLDER) -> Path:
    """Where ``benchmarks/profile_cost.py --json`` is told to write ``profile`` of ``study``'s measurement."""
    return Path(folder) / f"profile-cost-{study}-{profile}.json"


def load_profile_cost(study: str, profile: str, folder: str | Path = BENCHMARK_FOLDER) -> dict[str, Any] | None:
    """The profile-cost measurement of ``profile`` of ``study``, or None when it has not been measured."""
    return load_benchmark(profile_cost_path(study, profile, folder))


def _readable(value: Any) -> str:
    if value is None or value == []:
        return "none"
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _variant_index(variants: Sequence[Mapping[str, Any]]) -> pd.Index:
    """Each variant labelled by the parameters that tell it from the others.

    A variant's ``differs_by`` holds its example run's values of every parameter that varies in
    the grid, cost-neutral ones included (seed, noise, learning rate, ...): those are one run's,
    not the variant's (its other runs have other values), so they never label it."""
    from ..grid.cost import COST_NEUTRAL_KEYS

    described = [
        {key: _readable(value) for key, value in variant.get("differs_by", {}).items() if key not in COST_NEUTRAL_KEYS}
        for variant in variants
    ]
    keys = [key for key in dict.fromkeys(k for d in described for k in d) if len({d.get(key) for d in described}) > 1]
    labels = [tuple(d.get(key, "none") for key in keys) for d in described]
    if not keys or len(set(labels)) < len(labels):  # nothing (or not enough) tells them apart: their numbers do
        keys, labels = ["variant", *keys], [(variant["variant"], *label) for variant, label in zip(variants, labels)]
    if len(keys) == 1:
        return pd.Index([label[0] for label in labels], name=keys[0])
    return pd.MultiIndex.from_tuples(labels, names=keys)


def profile_cost_table(cost: Mapping[str, Any]) -> pd.DataFrame:
    """One row per measured variant: its runs, the first epoch (with compiling) and a steady one
    in seconds, training images per second, the probes' seconds per epoch, and the hours its runs
    take as projected (first + (epochs - 1) x steady per run)."""
    variants = cost["variants"]
    columns: dict[str, list] = {
        "runs": [int(variant["runs"]) for variant in variants],
        "first epoch (s)": [float(variant["first_epoch_seconds"]) for variant in variants],
        "steady epoch (s)": [float(variant["steady_epoch_seconds"]) for variant in variants],
        "training images/s": [_number(variant["train_images_per_second"]) for variant in variants],
        "probes (s/epoch)": [_number(variant["probe_seconds_per_epoch"]) for variant in variants],
        "hours of runs": [sum(variant["run_seconds"]) / 3600 for variant in variants],
    }
    if any("measured_from" in variant for variant in variants):  # figures read from the grid's own runs
        columns["measured from"] = [variant.get("measured_from", "") for variant in variants]
    return pd.DataFrame(columns, index=_variant_index(variants))


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def style_profile_cost_table(table: pd.DataFrame) -> Styler:
    """:func:`profile_cost_table` for a page: images per second whole, seconds with one decimal and hours
    with two (so that the rows add up to the total the sentence gives with one)."""

    def digits(column: str) -> str:
        if column == "runs":
            return "{:d}"
        if column == "measured from":
            return "{}"
        if column.endswith("images/s"):
            return "{:,.0f}"
        return "{:.2f}" if column.startswith("hours") else "{:.1f}"

    return table.style.format({column: digits(column) for column in table.columns})


def profile_cost_sentence(
    cost: Mapping[str, Any] | None,
    grid_file: str | Path,
    profile: str,
    path: str | Path,
    params: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """What measuring ``profile`` found: the hours of runs and of wall time projected, how it was
    measured and under what load; where the profile's runs now (``params``: :func:`profile_params`)
    are more or fewer than the runs measured, that the measurement is out of date. Without a
    measurement (``cost`` None), the command that writes it to ``path``."""
    if cost is None:
        command = f"python {PROFILE_COST_SCRIPT} {Path(grid_file).as_posix()} --profile {profile}"
        command += f" --json {Path(path).as_posix()}"  # where this chapter reads it
        return f"The `{profile}` profile's cost has not been measured: `{command}` measures it."
    measured_runs = sum(int(variant["runs"]) for variant in cost["variants"])
    threads, hours, wall_hours = cost["threads"], cost["total_run_seconds"] / 3600, cost["wall_seconds"] / 3600
    variants, from_runs = len(cost["variants"]), int(cost.get("variants_from_runs", 0))
    each = f"{cost['workers']} at a time with {threads} thread{'' if threads == 1 else 's'} each"
    if from_runs == variants:
        # Nothing was trained while measuring, so the load then says nothing about the figures.
        how = (f"each of the {variants} variants of the `{profile}` profile read from the grid's own run of it (the "
               f"first epoch and the median of the later ones), as the grid trained it, {each}")  # fmt: skip
    elif from_runs:
        how = (f"{from_runs} of the {variants} variants of the `{profile}` profile read from the grid's own runs of "
               f"them (the first epoch and the median of the later ones), the other {variants - from_runs} trained "
               f"for {cost['epochs_measured']} epochs each")  # fmt: skip
    else:
        how = f"{cost['epochs_measured']} epochs of each of {variants} variants of the `{profile}` profile"
    if from_runs < variants:
        how += (f", on the network, data and batch its runs train, {each} (load average "
                f"{cost['load_average_before']:.2f} before, {cost['load_average_after']:.2f} after)")
    text = (
        f"Measured with `{PROFILE_COST_SCRIPT}` on {str(cost.get('time', ''))[:10] or 'an unrecorded date'}: {how}. "
        f"Projected, its {_runs(measured_runs)} take "
        f"{hours:.1f} hours one after another, about {wall_hours:.1f} hours of wall time on {cost['workers']} workers."
    )
    if params and len(params) != measured_runs:
        text += (
            f" The profile has {_runs(len(params))} now, so this measurement of {measured_runs} does not size it as it stands."
        )
    return text
