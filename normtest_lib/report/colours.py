"""One colour per setting or variant, the same in every figure of the book.

A reader who learned that batch norm is blue in one chapter should find it blue in the
next; seaborn's default palette would instead colour by position in each figure's legend.
Names not listed here take the remaining colours of the palette, in order.
"""

from __future__ import annotations

from typing import Hashable, Sequence

# matplotlib's tab10 colours by name, so the choices read in code.
BLUE, ORANGE, GREEN, RED, PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"
BROWN, PINK, GREY, OLIVE, CYAN = "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
PALETTE = (BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY, OLIVE, CYAN)

FIXED: dict[str, str] = {
    # Study 2: normalization layers (torch's batch norm and ours share the blue family's neighbours).
    "torch_bn": BLUE, "bn": ORANGE, "in": GREEN, "bin": RED, "ln": PURPLE, "gn:c/4": BROWN, "gn:32": OLIVE,
    "none": GREY,
    # Study 1: input settings.
    "finetune": BLUE, "pretrain": ORANGE, "instance": GREEN, "unit": RED, "minmax": PURPLE, "from scratch": GREY,
    # Study 3: variants ("bn" as above).
    "convnorm": CYAN, "convnorm+bn": PINK,
}  # fmt: skip


def palette_for(names: Sequence[Hashable]) -> dict:
    """``{name: colour}`` for ``names`` in their order: the book's fixed colour where a name has
    one, else the first palette colour no listed name uses (cycling when they run out)."""
    taken = {FIXED[str(name)] for name in names if str(name) in FIXED}
    spare = [colour for colour in PALETTE if colour not in taken] or list(PALETTE)
    palette, next_spare = {}, 0
    for name in names:
        if str(name) in FIXED:
            palette[name] = FIXED[str(name)]
        else:
            palette[name] = spare[next_spare % len(spare)]
            next_spare += 1
    return palette
