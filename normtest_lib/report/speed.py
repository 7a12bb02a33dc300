"""The layer benchmark's figures (``benchmarks/layers.py --json``) as a table and sentences.

Eager figures (``images_per_second``) are what earlier versions reported; files written since
issue 20 add ``compiled_images_per_second`` (``torch.compile``, in the engine's default memory
format), which the table shows beside them with its ratio to ``torch_bn``'s eager figure.

Besides each variant's throughput and its ratio to ``torch_bn``, the table splits out
what normalization itself costs: the network without normalization (``none``) runs the same
convolutions, so ``batch * (1 / ips_variant - 1 / ips_none)`` is the time per training step
that the variant's normalization adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
from pandas.io.formats.style import Styler

REFERENCE = "torch_bn"
WITHOUT_NORMALIZATION = "none"


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
    the file, compiled images per second and their ratio to ``torch_bn``'s eager figure too."""
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

    styler = table.style.format({column: digits(column) for column in table.columns}, na_rep=MISSING_TEXT)
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
