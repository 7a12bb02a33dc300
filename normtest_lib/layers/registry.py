"""Two registries that map a layer's name to a builder: normalizations and convolutions.

Models never construct a normalization or a convolution directly; they ask
:func:`create_norm` / :func:`create_conv` by the name a run's parameters give
(``norm_layer``, ``conv_layer``). A new layer family is therefore one new module
with a ``@register_norm("name")`` (or ``@register_conv``) builder, imported in
``layers/__init__.py``; no model changes.

A name may carry one argument after a colon, e.g. ``torch_gn:8``. The builder
receives it as a string (or None) and interprets it; builders that take no
argument reject one. A builder that takes one registers the forms it accepts
(:class:`ArgumentForm`), so that the book's glossary can say what ``gn:c/4`` or
``convnorm:1000`` means without a list kept by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from torch import nn

from ..errors import ModelError

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

# A norm builder: (num_channels, arg) -> module whose output has the input's shape.
NormBuilder = Callable[[int, "str | None"], nn.Module]
# A conv builder: (in_channels, out_channels, kernel_size, stride, padding, bias, arg) -> module.
ConvBuilder = Callable[[int, int, int, int, int, bool, "str | None"], nn.Module]


@dataclass(frozen=True)
class ArgumentForm:
    """One form of the argument a layer name may carry after its colon, in a reader's words.

    ``pattern`` is the argument with a placeholder in angle brackets standing for a positive
    integer (``c/<k>``); ``example`` an argument of that form that a layer of 64 channels accepts
    (``c/4``), which tests build, so that a form the builder no longer reads cannot stay listed;
    ``meaning`` what such an argument does, for the glossary.
    """

    pattern: str
    example: str
    meaning: str

    def matches(self, arg: str) -> bool:
        """Whether ``arg`` has this form: the pattern with each placeholder read as a positive integer."""
        pieces = re.split(r"<[^>]+>", self.pattern)
        return re.fullmatch(r"[0-9]+".join(re.escape(piece) for piece in pieces), arg) is not None


@dataclass(frozen=True)
class LayerName:
    """A layer name split into the registered base name and its optional argument."""

    base: str
    arg: str | None

    @classmethod
    def parse(cls, name: str) -> "LayerName":
        base, sep, arg = name.partition(":")
        if sep and not arg:
            raise ModelError(f"layer name {name!r} has a colon but no argument after it")
        return cls(base.strip(), arg.strip() if sep else None)


class _Registry(Generic[Builder]):
    """Name -> builder, with errors that list the known names."""

    def __init__(self, kind: str, option: str) -> None:
        self.kind = kind  # "normalization" / "convolution", for messages
        self.option = option  # the run parameter that selects it, for messages
        self.builders: dict[str, Builder] = {}
        self.arguments: dict[str, tuple[ArgumentForm, ...]] = {}  # name -> the argument forms its builder accepts

    def register(self, name: str, arguments: tuple[ArgumentForm, ...] = ()) -> Callable[[Builder], Builder]:
        if ":" in name:
            raise ValueError(f"registered {self.kind} name {name!r} must not contain ':'")

        def decorate(builder: Builder) -> Builder:
            if name in self.builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self.builders[name] = builder
            self.arguments[name] = tuple(arguments)
            return builder

        return decorate

    def names(self) -> list[str]:
        return sorted(self.builders)

    def lookup(self, name: str) -> tuple[Builder, LayerName]:
        parsed = LayerName.parse(name)
        try:
            return self.builders[parsed.base], parsed
        except KeyError:
            raise ModelError(
                f"unknown {self.kind} {parsed.base!r} ({self.option}={name!r}); known: {', '.join(self.names())}"
            ) from None


NORMS: _Registry[NormBuilder] = _Registry("normalization", "norm_layer")
CONVS: _Registry[ConvBuilder] = _Registry("convolution", "conv_layer")


def register_norm(name: str, arguments: tuple[ArgumentForm, ...] = ()) -> Callable[[NormBuilder], NormBuilder]:
    """Decorator: register ``builder(num_channels, arg) -> nn.Module`` as normalization ``name``;
    ``arguments``: the forms of the argument it accepts after ``name:`` (none: it rejects one)."""
    return NORMS.register(name, arguments)


def register_conv(name: str, arguments: tuple[ArgumentForm, ...] = ()) -> Callable[[ConvBuilder], ConvBuilder]:
    """Decorator: register ``builder(in_ch, out_ch, kernel_size, stride, padding, bias, arg)`` as ``name``;
    ``arguments``: the forms of the argument it accepts after ``name:`` (none: it rejects one)."""
    return CONVS.register(name, arguments)


def norm_names() -> list[str]:
    return NORMS.names()


def conv_names() -> list[str]:
    return CONVS.names()


def norm_builder(name: str) -> NormBuilder:
    """The builder registered for the base of normalization ``name`` (its docstring says what it builds)."""
    return NORMS.lookup(name)[0]


def conv_builder(name: str) -> ConvBuilder:
    """The builder registered for the base of convolution ``name`` (its docstring says what it builds)."""
    return CONVS.lookup(name)[0]


def norm_arguments(name: str) -> tuple[ArgumentForm, ...]:
    """The argument forms normalization ``name``'s base accepts after its colon; () when it takes none."""
    return NORMS.arguments[NORMS.lookup(name)[1].base]


def conv_arguments(name: str) -> tuple[ArgumentForm, ...]:
    """The argument forms convolution ``name``'s base accepts after its colon; () when it takes none."""
    return CONVS.arguments[CONVS.lookup(name)[1].base]


def create_norm(name: str, num_channels: int) -> nn.Module:
    """Build the normalization layer ``name`` (e.g. ``torch_bn``, ``torch_gn:c/4``) for ``num_channels``."""
    builder, parsed = NORMS.lookup(name)
    try:
        module = builder(num_channels, parsed.arg)
    except ModelError as exc:
        raise ModelError(f"norm_layer {name!r} with {num_channels} channels: {exc}") from None
    # Mark what the factory built, so probes find every normalization layer of a model whatever
    # its class (a from-scratch layer, a Sequential); "none" builds no layer of its own.
    if not isinstance(module, nn.Identity) and not hasattr(type(module), "is_norm_layer"):
        module.is_norm_layer = True
    return module


# torch's own normalization classes, found in models that do not build them through create_norm
# (torchvision's DenseNets, a checkpoint's network built elsewhere).
TORCH_NORM_CLASSES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def is_norm_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization layer (what the ``layer_stats`` probe measures).

    The marker is the attribute ``is_norm_layer``: a from-scratch layer class may set
    ``is_norm_layer = True`` (or False to opt out), and :func:`create_norm` sets it on
    every module it builds except ``nn.Identity``. Unmarked modules count when they are
    one of torch's normalization classes (BatchNorm, GroupNorm, LayerNorm, InstanceNorm).
    """
    marker = getattr(module, "is_norm_layer", None)
    if isinstance(marker, bool):
        return marker
    return isinstance(module, TORCH_NORM_CLASSES)


def create_conv(
    name: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    bias: bool = False,
) -> nn.Module:
    """Build the convolution ``name`` (e.g. ``conv``) with the usual Conv2d arguments."""
    builder, parsed = CONVS.lookup(name)
    try:
        return builder(in_channels, out_channels, kernel_size, stride, padding, bias, parsed.arg)
    except ModelError as exc:
        raise ModelError(f"conv_layer {name!r}: {exc}") from None


def no_argument(arg: str | None) -> None:
    """For builders that take no argument: reject one, so a typo like ``torch_bn:8`` is not ignored."""
    if arg is not None:
        raise ModelError(f"takes no argument after ':' (got {arg!r})")


def check_norm_name(name: str) -> None:
    """Raise ModelError if ``name``'s base is not a registered normalization (the argument is
    checked when the layer is built, since it may depend on the channel count)."""
    NORMS.lookup(name)


def check_conv_name(name: str) -> None:
    """Raise ModelError if ``name``'s base is not a registered convolution."""
    CONVS.lookup(name)
