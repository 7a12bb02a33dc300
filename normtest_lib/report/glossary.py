"""The book's glossary: every name a table or figure shows, defined from the library's own registries and schema.

Tables name things by the values runs were given (``norm_layer: gn:c/4``, ``dataset: imagefolder``,
``input_norm: center``, ``depth_n``) or by a study's own labels (``convnorm+bn``). A glossary typed by
hand would fall behind the code the day a layer, data set, setting or parameter is added, so every
entry here is read from where the code defines it:

- normalization and convolution layers: the layer registries (``layers/registry.py``), each meaning the
  first sentence of its builder's docstring, and the argument forms each builder registers
  (:class:`~normtest_lib.layers.registry.ArgumentForm`: ``gn:c/4``, ``convnorm:1000``), explained once;
- data sets: the data registry's descriptions, the photometric shifts (``<data set>+dim``) and the rule
  that names an image-folder set by its folder (:func:`~normtest_lib.report.labels.dataset_label`);
- models: the model registry's descriptions;
- input settings: :data:`normtest_lib.input_norm.DESCRIPTIONS`;
- run parameters: every field of :class:`~normtest_lib.config.RunConfig`, its default, the values it
  takes (from its type and bounds) and its ``description``;
- a study's own labels: passed in (``report`` never imports a study; the glossary page asks
  :func:`normtest_lib.studies.study_glossary` for each).

:func:`glossary_tables` returns one table per kind; :func:`define` says what one run parameter's value
means, or raises KeyError when the glossary does not define it (the tests ask it for every value the
committed runs use); :func:`style_glossary` renders a table for the page.
"""

from __future__ import annotations

import html
import re
import types
from typing import Any, Literal, Mapping, Sequence, Union, get_args, get_origin

import pandas as pd
import yaml
from pandas.io.formats.style import Styler
from pydantic.fields import FieldInfo

from ..config import RunConfig
from ..data import photometric
from ..data.registry import dataset_names, get_spec
from ..input_norm import DESCRIPTIONS, SETTINGS
from ..layers import conv_arguments, conv_builder, conv_names, norm_arguments, norm_builder, norm_names
from ..layers.registry import ArgumentForm, LayerName
from ..models import get_model_spec, model_names
from .labels import dataset_label

# The kinds of name, in the page's order: the run parameter each defines the values of, and its title.
KINDS: dict[str, str] = {
    "norm_layer": "Normalization layers",
    "conv_layer": "Convolution layers",
    "dataset": "Data sets",
    "model": "Models",
    "input_norm": "Input settings",
    "study_labels": "Labels of the study chapters",
    "parameters": "Run parameters",
}
NAME = "name"
MEANING = "meaning"
# The example folder the image-folder row names (the CIFAR-10 JPEG copy the committed runs read).
EXAMPLE_FOLDER = "data/cifar10-jpeg"
TYPE_WORDS = {int: "integers", float: "numbers", str: "names"}  # a list's items, in words
# A table's CSS class: the book's style sheet wraps and left-aligns its text (book/_static/normtest.css).
CSS_CLASS = "glossary"


# --- reading the code's own words ----------------------------------------------------------


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, reStructuredText's ````x```` as Markdown's ```x```.

    Builders' docstrings open with what they build, which is what a reader of a table needs; the rest
    says how. A sentence ends at a full stop followed by a space and a capital (so "e.g. a" does not end one).
    """
    paragraph = re.split(r"\n\s*\n", (doc or "").strip())[0]
    text = " ".join(line.strip() for line in paragraph.splitlines()).replace("``", "`")
    return re.split(r"(?<=\.)\s+(?=[A-Z`(])", text)[0].strip()


def _layer_table(names: Sequence[str], builder, arguments) -> pd.DataFrame:
    """One row per registered name (its builder's first sentence), then one per argument form, each once,
    naming the layers that accept it (the group-norm families share theirs); a placeholder such as ``<k>``
    stands for a positive integer."""
    rows = [{NAME: name, MEANING: first_sentence(builder(name).__doc__)} for name in names]
    forms: dict[ArgumentForm, list[str]] = {}
    for name in names:
        for form in arguments(name):
            forms.setdefault(form, []).append(name)
    for form, bases in forms.items():
        layers = ", ".join(f"`{base}`" for base in bases)
        rows.append({NAME: f"<name>:{form.pattern}", MEANING: f"for <name> {layers}: {form.meaning}"})
    return pd.DataFrame(rows, columns=[NAME, MEANING])


def norm_layer_table() -> pd.DataFrame:
    """Every registered normalization (``norm_layer``) and the argument forms of those that take one."""
    return _layer_table(norm_names(), norm_builder, norm_arguments)


def conv_layer_table() -> pd.DataFrame:
    """Every registered convolution (``conv_layer``) and the argument forms of those that take one."""
    return _layer_table(conv_names(), conv_builder, conv_arguments)


def _shift_words(shift: str) -> str:
    """The shift's first docstring line, to follow a colon."""
    words = photometric.describe(shift)
    return words[:1].lower() + words[1:]


def dataset_table() -> pd.DataFrame:
    """Every registered data set (its description), one row per photometric shift, and the image-folder label."""
    rows = [{NAME: name, MEANING: get_spec(name).description} for name in dataset_names()]
    for shift in photometric.shift_names():
        rows.append({
            NAME: photometric.shifted_name("<data set>", shift),
            MEANING: f"any data set above with the `{shift}` shift applied to both splits: {_shift_words(shift)} "
                     f"(e.g. `{photometric.shifted_name('imagefolder', shift)}`)",
        })  # fmt: skip
    example = {"dataset": "imagefolder", "data_root": EXAMPLE_FOLDER}
    shifted = {**example, "dataset": photometric.shifted_name("imagefolder", photometric.shift_names()[0])}
    rows.append({
        NAME: "<folder>",
        MEANING: f"how tables name an `imagefolder` set: by its folder (data_root), so `imagefolder` read from "
                 f"`{EXAMPLE_FOLDER}` is `{dataset_label(example)}`, and `{shifted['dataset']}` read from it "
                 f"`{dataset_label(shifted)}`",
    })  # fmt: skip
    return pd.DataFrame(rows, columns=[NAME, MEANING])


def model_table() -> pd.DataFrame:
    """Every registered model with its description."""
    return pd.DataFrame([{NAME: name, MEANING: get_model_spec(name).description} for name in model_names()],
                        columns=[NAME, MEANING])


def input_setting_table() -> pd.DataFrame:
    """Every input normalization setting (``input_norm``) with its sentence."""
    return pd.DataFrame([{NAME: name, MEANING: DESCRIPTIONS[name]} for name in SETTINGS], columns=[NAME, MEANING])


def study_label_table(study_terms: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """The labels of each study's chapter that are no run parameter's value: ``{study: {label: meaning}}``."""
    rows = [{"study": study, NAME: label, MEANING: meaning}
            for study, terms in study_terms.items() for label, meaning in terms.items()]
    return pd.DataFrame(rows, columns=["study", NAME, MEANING])


# --- the run parameters ----------------------------------------------------------------------


def _yaml(value: Any) -> str:
    """A value as a run's ``params.yaml`` writes it (``null``, ``true``, ``[]``, ``0.0005``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _bounds(field: FieldInfo) -> str:
    lower = upper = ""
    for bound in field.metadata:
        for attribute, text in (("ge", ">="), ("gt", ">")):
            if getattr(bound, attribute, None) is not None:
                lower = f"{text} {getattr(bound, attribute):g}"
        for attribute, text in (("le", "<="), ("lt", "<")):
            if getattr(bound, attribute, None) is not None:
                upper = f"{text} {getattr(bound, attribute):g}"
    return ", ".join(part for part in (lower, upper) if part)


def _members(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def allowed_values(key: str, field: FieldInfo) -> str:
    """What a parameter accepts, read from its type and bounds: choices, a number's range, or the table of names."""
    if key in KINDS:
        return f"a name of the {KINDS[key].lower()} table"
    parts = []
    for member in _members(field.annotation):
        if get_origin(member) is Literal:
            parts += [f"`{_yaml(choice)}`" for choice in get_args(member)]
        elif member is type(None):
            parts.append("`null`")
        elif member is bool:
            parts += ["`true`", "`false`"]
        elif member in (int, float):
            parts.append(" ".join(filter(None, ("integer" if member is int else "number", _bounds(field)))))
        elif get_origin(member) is list:
            parts.append(f"list of {'/'.join(TYPE_WORDS.get(arg, str(arg)) for arg in get_args(member))}")
        else:
            parts.append("path" if getattr(member, "__name__", "") in ("Path", "PurePath") else "text")
    return ", ".join(dict.fromkeys(parts))


def parameter_table(protocol_keys: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Every run parameter (RunConfig's fields, in its order): default, accepted values and description.

    ``protocol_keys`` (``{study: keys}``) adds a column naming the studies whose protocol tables show each.
    """
    defaults = RunConfig.model_construct().to_dict()
    rows = []
    for key, field in RunConfig.model_fields.items():
        row = {NAME: key, "default": _yaml(defaults[key]), "values": allowed_values(key, field),
               MEANING: field.description or ""}
        if protocol_keys is not None:
            row["protocol tables"] = ", ".join(study for study, keys in protocol_keys.items() if key in keys)
        rows.append(row)
    return pd.DataFrame(rows)


# --- the glossary ------------------------------------------------------------------------


def glossary_tables(
    study_terms: Mapping[str, Mapping[str, str]] | None = None, protocol_keys: Mapping[str, Sequence[str]] | None = None
) -> dict[str, pd.DataFrame]:
    """One table per kind of :data:`KINDS`, in its order; ``study_terms`` (``{study: {label: meaning}}``) and
    ``protocol_keys`` (``{study: keys}``) come from the studies, which this module may not import."""
    return {
        "norm_layer": norm_layer_table(),
        "conv_layer": conv_layer_table(),
        "dataset": dataset_table(),
        "model": model_table(),
        "input_norm": input_setting_table(),
        "study_labels": study_label_table(study_terms or {}),
        "parameters": parameter_table(protocol_keys),
    }


def _layer_meaning(value: str, names: Sequence[str], builder, arguments) -> str:
    parsed = LayerName.parse(value)
    if parsed.base not in names:
        raise KeyError(f"{value!r}: {parsed.base!r} is not a registered layer")
    meaning = first_sentence(builder(parsed.base).__doc__)
    if parsed.arg is None:
        return meaning
    form = next((form for form in arguments(parsed.base) if form.matches(parsed.arg)), None)
    if form is None:
        raise KeyError(f"{value!r}: no argument form of {parsed.base!r} reads {parsed.arg!r}")
    return f"{meaning} With `{form.pattern}`: {form.meaning}"


def define(parameter: str, value: Any) -> str:
    """What ``value`` of run parameter ``parameter`` means, in the glossary's words; KeyError when the glossary
    does not define it (an unregistered name, an argument no form reads, an unknown shift or parameter).

    ``norm_layer`` and ``conv_layer`` values are read as ``<name>[:<argument>]``, ``dataset`` values as
    ``<data set>[+<shift>]``; other parameters by their description.
    """
    value = str(value)
    if parameter == "norm_layer":
        return _layer_meaning(value, norm_names(), norm_builder, norm_arguments)
    if parameter == "conv_layer":
        return _layer_meaning(value, conv_names(), conv_builder, conv_arguments)
    if parameter == "dataset":
        base, _, shift = value.partition(photometric.SEPARATOR)
        if base not in dataset_names():
            raise KeyError(f"{value!r}: {base!r} is not a registered data set")
        if shift and shift not in photometric.SHIFTS:
            raise KeyError(f"{value!r}: {shift!r} is not a photometric shift")
        meaning = get_spec(base).description
        return f"{meaning}; with the `{shift}` shift: {_shift_words(shift)}" if shift else meaning
    if parameter == "model":
        if value not in model_names():
            raise KeyError(f"{value!r} is not a registered model")
        return get_model_spec(value).description
    if parameter == "input_norm":
        return DESCRIPTIONS[value]
    field = RunConfig.model_fields.get(parameter)
    if field is None or not field.description:
        raise KeyError(f"{parameter!r} is not a described run parameter")
    return field.description


# --- the page --------------------------------------------------------------------------


def _html(text: Any) -> str:
    """A cell's text as HTML: escaped, with Markdown's ```x``` as ``<code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(text), quote=False))


def style_glossary(table: pd.DataFrame) -> Styler:
    """``table`` for the page: names and defaults as code, ```x``` in text as code, no index, wrapped text.

    The book's style sheet right-aligns and never wraps table cells (numbers); a glossary is sentences,
    so its table carries the :data:`CSS_CLASS` that the style sheet left-aligns and wraps.
    """
    cells = table.copy()
    for column in cells.columns:
        code = column in (NAME, "default")
        cells[column] = [f"<code>{html.escape(str(v), quote=False)}</code>" if code else _html(v) for v in cells[column]]
    return cells.style.hide(axis="index").set_table_attributes(f'class="{CSS_CLASS}"')
