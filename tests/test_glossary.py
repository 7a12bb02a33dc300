"""The glossary (report/glossary.py): every name a table shows is defined, from the code that defines it.

The committed runs' values are the names the chapters actually print, so each must be defined; a layer,
data set, model or setting registered without a meaning, an argument form a builder no longer reads, or a
run parameter without a description fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from normtest_lib import studies
from normtest_lib.config import RunConfig
from normtest_lib.data.registry import dataset_names
from normtest_lib.data import photometric
from normtest_lib.errors import ModelError
from normtest_lib.grid import spec as spec_module
from normtest_lib.input_norm import SETTINGS
from normtest_lib.layers import (
    conv_arguments, conv_names, create_conv, create_norm, norm_arguments, norm_names,
)  # fmt: skip
from normtest_lib.models import model_names
from normtest_lib.report import glossary, protocol

REPO = Path(__file__).resolve().parents[1]
DEFINED_PARAMETERS = ("norm_layer", "conv_layer", "dataset", "input_norm", "model")


@pytest.fixture(scope="module")
def tables():
    return glossary.glossary_tables(
        {study: studies.study_glossary(study) for study in studies.ANSWERED_STUDIES},
        {study: studies.protocol_keys(study) for study in studies.ANSWERED_STUDIES},
    )


def committed_params() -> list[tuple[Path, dict]]:
    """Every committed run's parameters under results/<study>/<profile>/<run id>/, withdrawn runs (previous/) skipped."""
    found = []
    for path in sorted(REPO.glob("results/*/*/*/params.yaml")):
        if "previous" in path.relative_to(REPO).parts:
            continue
        found.append((path, yaml.safe_load(path.read_text())))
    return found


def meanings(table) -> dict[str, str]:
    return dict(zip(table[glossary.NAME], table[glossary.MEANING]))


# --- every registered name -------------------------------------------------------------------


@pytest.mark.parametrize("kind, names", [
    ("norm_layer", norm_names), ("conv_layer", conv_names), ("dataset", dataset_names), ("model", model_names),
    ("input_norm", lambda: list(SETTINGS)),
])  # fmt: skip
def test_every_registered_name_appears_with_a_meaning(tables, kind, names):
    defined = meanings(tables[kind])
    assert names() and set(names()) <= set(defined)
    for name in names():
        assert len(defined[name].strip()) > 10, (kind, name, defined[name])
        assert glossary.define(kind, name) == defined[name]
    assert list(tables) == list(glossary.KINDS)


def test_layer_meanings_are_the_builders_first_sentence_in_markdown(tables):
    layers = meanings(tables["norm_layer"])
    assert layers["gn"].startswith("From-scratch group norm; C/4 groups") and "``" not in layers["gn"]
    assert layers["torch_bn"] == "torch.nn.BatchNorm2d (running statistics with momentum 0.1)."
    assert layers["torch_gn"].startswith("torch.nn.GroupNorm; 32 groups")
    assert glossary.first_sentence("One thing, e.g. a layer. The rest.\n\nMore.") == "One thing, e.g. a layer."
    assert glossary.first_sentence("torch.nn.Conv2d,\n    default-initialised.") == "torch.nn.Conv2d, default-initialised."


# --- argument forms -------------------------------------------------------------------------------


def test_each_argument_form_is_listed_once_and_its_example_builds():
    forms = {}
    for name in norm_names():
        for form in norm_arguments(name):
            assert form.matches(form.example), form
            create_norm(f"{name}:{form.example}", 64)  # a form the builder no longer reads would raise
            forms.setdefault(form.pattern, []).append(name)
    assert forms == {"<k>": ["gn", "torch_gn"], "c/<k>": ["gn", "torch_gn"]}
    for name in conv_names():
        for form in conv_arguments(name):
            assert form.matches(form.example)
            create_conv(f"{name}:{form.example}", 8, 8, 3, padding=1)
    assert [form.pattern for form in conv_arguments("convnorm")] == ["<steps>"]


def test_a_layer_without_argument_forms_rejects_an_argument_so_none_goes_undefined():
    for name in norm_names():
        if not norm_arguments(name):
            with pytest.raises(ModelError):
                create_norm(f"{name}:8", 64)
    for name in conv_names():
        if not conv_arguments(name):
            with pytest.raises(ModelError):
                create_conv(f"{name}:8", 8, 8, 3, padding=1)


def test_the_argument_forms_resolve_as_the_layers_read_them(tables):
    assert create_norm("gn:c/4", 64).num_groups == 16  # C/4 groups: 4 channels per group
    assert create_norm("torch_gn:32", 64).num_groups == 32
    quarter = glossary.define("norm_layer", "gn:c/4")
    assert "4 channels per group" in quarter and quarter.startswith("From-scratch group norm")
    assert "32 groups" in glossary.define("norm_layer", "torch_gn:32")
    steps = glossary.define("conv_layer", "convnorm:1000")
    assert "span, in optimizer steps, of the running average" in steps and "40,000" in steps
    rows = meanings(tables["norm_layer"])
    assert "`gn`, `torch_gn`" in rows["<name>:c/<k>"] and "<name>:<k>" in rows  # explained once, for both
    for value in ("gn:quarter", "bn:8", "convnorm_x", "gn:"):
        with pytest.raises((KeyError, ModelError)):
            glossary.define("conv_layer" if value.startswith("convnorm") else "norm_layer", value)


def test_shifted_data_sets_and_folder_labels_are_explained(tables):
    rows = meanings(tables["dataset"])
    for shift in photometric.shift_names():
        assert f"<data set>+{shift}" in rows
        assert photometric.describe(shift).lower()[:20] in glossary.define("dataset", f"imagefolder+{shift}").lower()
    assert "`cifar10-jpeg`" in rows["<folder>"] and "`cifar10-jpeg+dim`" in rows["<folder>"]
    for value in ("imagefolder+bright", "mnist", "mnist+dim"):
        with pytest.raises(KeyError):
            glossary.define("dataset", value)


# --- what the committed runs use -------------------------------------------------------------


def test_every_value_the_committed_runs_use_is_defined_with_its_argument_or_shift():
    runs = committed_params()
    assert len(runs) >= 30, "the committed results are missing"
    seen = {key: set() for key in DEFINED_PARAMETERS}
    for path, params in runs:
        for key in DEFINED_PARAMETERS:
            value = str(params.get(key, RunConfig.model_fields[key].default))
            seen[key].add(value)
            meaning = glossary.define(key, value)  # KeyError: a name the glossary does not define
            assert meaning.strip(), (path, key, value)
            if key.endswith("_layer") and ":" in value:
                assert "With `" in meaning, (path, key, value)  # the argument's form is explained
            if key == "dataset" and "+" in value:
                assert "shift" in meaning, (path, value)
    assert "gn:c/4" in seen["norm_layer"] and "center" in seen["input_norm"] and "imagefolder" in seen["dataset"]


def test_descriptions_leave_every_committed_run_id_unchanged():
    """Run ids hash parameter values, never the schema: with the descriptions added, each committed run's folder
    is still named by its parameters' id (a run started from its profile's pretraining run hashes that run's id)."""
    for path, params in committed_params():
        config = RunConfig.model_construct(**params)  # no validation: the data folders are not in the checkout
        source = re.search(r"([0-9a-f]{12})/best\.pt$", str(params.get("pretrained", "")))
        identity = spec_module._identity(config)
        if source:
            identity = {**identity, "pretrained": spec_module.pretrain_token(source[1])}
        assert spec_module._hash(identity) == path.parent.name, path


# --- run parameters ------------------------------------------------------------------------------


def test_every_run_parameter_is_described_and_listed_with_its_default(tables):
    table = tables["parameters"].set_index(glossary.NAME)
    assert list(table.index) == list(RunConfig.model_fields)
    defaults = RunConfig.model_construct().to_dict()
    for key, field in RunConfig.model_fields.items():
        assert field.description and len(field.description) > 8, f"RunConfig.{key} has no description"
        assert yaml.safe_load(table.loc[key, "default"]) == defaults[key], key
        assert table.loc[key, glossary.MEANING] == field.description
    assert table.loc["optimizer", "values"] == "`sgd`, `adam`, `adamw`"
    assert table.loc["val_fraction", "values"] == "number >= 0, < 1"
    assert table.loc["norm_layer", "values"] == "a name of the normalization layers table"
    assert "normalization_layers" in table.loc["depth_n", "protocol tables"]


def test_every_protocol_key_of_every_study_has_a_description(tables):
    keys = {study: studies.protocol_keys(study) for study in studies.ANSWERED_STUDIES}
    keys["report.protocol"] = protocol.PROTOCOL_KEYS
    described = meanings(tables["parameters"])
    for owner, names in keys.items():
        assert names, owner
        for key in names:
            assert RunConfig.model_fields[key].description, f"{owner} tabulates {key}, which has no description"
            assert described[key] == RunConfig.model_fields[key].description


# --- the studies' own labels ----------------------------------------------------------------------


def label_pattern(label: str) -> re.Pattern:
    """A glossary label as a regular expression: ``<input setting>`` any setting, ``<n>`` a number."""
    placeholders = {"<input setting>": "(" + "|".join(SETTINGS) + ")", "<n>": "[0-9]+"}
    parts = re.split(r"(<[^>]+>)", label)
    return re.compile("".join(placeholders.get(part, re.escape(part)) for part in parts))


def test_study_one_labels_are_all_in_its_glossary():
    from normtest_lib.studies.input_normalization.analysis import GLOSSARY, setting_label

    patterns = [label_pattern(label) for label in GLOSSARY]
    runs = [{"input_norm": setting, "pretrained": pretrained, "stats_subset": images}
            for setting in SETTINGS for pretrained in ("none", "imagenet") for images in (None, 10)]
    for run in runs:
        label = setting_label(run)
        assert any(pattern.fullmatch(label) for pattern in patterns), label


def test_study_three_variants_are_all_defined_with_their_parameters(tables):
    from normtest_lib.studies.convnorm_label_noise import analysis

    assert set(analysis.VARIANT_MEANINGS) == set(analysis.VARIANT_NAMES.values()) == set(analysis.VARIANT_ORDER)
    labels = tables["study_labels"]
    variants = meanings(labels[labels["study"] == "convnorm_label_noise"])
    for (conv, norm), name in analysis.VARIANT_NAMES.items():
        assert f"conv_layer `{conv}`, norm_layer `{norm}`" in variants[name]
    assert studies.study_glossary("normalization_layers") == {}  # its tables use the layers' own names


# --- the page ------------------------------------------------------------------------------


def test_style_escapes_placeholders_and_sets_names_as_code(tables):
    page = glossary.style_glossary(tables["norm_layer"]).to_html()
    assert 'class="glossary"' in page
    assert "<code>&lt;name&gt;:c/&lt;k&gt;</code>" in page and "<code>gn:32</code>" in page
    assert "<name>" not in page


def test_the_glossary_page_is_registered_like_every_other_report():
    from normtest_lib.report import book

    report = next(r for r in book.REPORTS if r.chapter == "glossary")
    assert report.template == "notebooks/glossary.ipynb" and not report.studies and not report.reads
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [chapter["file"] for chapter in toc["chapters"]]
    assert files.index("book/chapters/glossary") == files.index("book/chapters/references") + 1
    notebook = json.loads((REPO / "notebooks" / "glossary.ipynb").read_text())
    assert notebook["cells"][0]["source"][0] == "(glossary)=\n"  # the label chapters link terms to
    landing = json.loads((REPO / "notebooks" / "findings.ipynb").read_text())["cells"][0]
    assert landing["cell_type"] == "markdown" and "{doc}`the glossary <glossary>`" in "".join(landing["source"])
