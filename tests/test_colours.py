"""Every figure colours a setting or variant the same way, whatever else it shows."""

from normtest_lib.report.colours import FIXED, PALETTE, palette_for


def test_a_named_variant_keeps_its_colour_whatever_the_legend_order():
    assert palette_for(["none", "bn", "torch_bn"])["torch_bn"] == palette_for(["torch_bn"])["torch_bn"] == FIXED["torch_bn"]
    assert palette_for(["bin", "in"]) == {"bin": FIXED["bin"], "in": FIXED["in"]}


def test_unknown_names_take_colours_no_listed_name_uses():
    palette = palette_for(["torch_bn", "mystery", "other"])
    assert palette["mystery"] != FIXED["torch_bn"] and palette["other"] not in (FIXED["torch_bn"], palette["mystery"])
    assert set(palette.values()) <= set(PALETTE)


def test_the_fixed_colours_tell_each_studys_names_apart():
    for names in (("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "gn:32", "none"),
                  ("finetune", "pretrain", "instance", "unit", "minmax", "from scratch"),
                  ("bn", "convnorm", "convnorm+bn")):  # fmt: skip
        assert len({FIXED[name] for name in names}) == len(names)
