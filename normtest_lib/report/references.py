"""The works this book restates, corrects or uses: one list, rendered as the book's references page.

Every chapter names its sources from here: the earlier works' repositories (the three studies
restate them; the errata chapter names the file and function each defect is in), the methods the
layers implement and the data sets. :func:`references_markdown` is the page ``normtest book``
writes (``book/chapters/references.md``, listed in ``_toc.yml``), one MyST target per entry
(:func:`target`), so a page links an entry with ``{ref}`Liu et al. 2021 <ref-liu2021>``` or the
work itself with :func:`link`. ``tests/test_references.py`` checks that every entry's address is on
the page and that every earlier work is linked from a chapter.
"""

from __future__ import annotations

from dataclasses import dataclass

# The kinds of entry, in the order the page lists them.
EARLIER_WORK = "earlier work"
OFFICIAL_CODE = "official code"
METHOD = "method"
DATA_SET = "data set"
KINDS = (EARLIER_WORK, OFFICIAL_CODE, METHOD, DATA_SET)
HEADINGS = {
    EARLIER_WORK: "The earlier works this book restates",
    OFFICIAL_CODE: "Official code of a method",
    METHOD: "Methods",
    DATA_SET: "Data sets",
}
REFERENCES_LABEL = "references"  # the page's own target


@dataclass(frozen=True)
class Reference:
    """One work: who, what, when, where, and the address a reader follows."""

    key: str  # the target's suffix: ``ref-<key>``
    kind: str  # one of KINDS
    authors: str
    title: str
    year: str  # as the work gives it; "n.d." where it gives none
    venue: str  # a conference, an arXiv id, or what kind of repository
    url: str
    used_for: str  # where this book uses it, in a few words
    short: str  # how the text cites it: ``Liu et al. 2021``, or a repository's name


REFERENCES: tuple[Reference, ...] = (
    Reference(
        "normalization-test", EARLIER_WORK, "Normalization-Test", "Comparison of normalizations to pre-process "
        "images when fine-tuning a pretrained model (GitHub user TooTouch)", "n.d.", "GitHub repository (MIT license)",
        "https://github.com/TooTouch/Normalization-Test", "study 1: its protocol, published table and defects",
        "Normalization-Test",
    ),
    Reference(
        "normalizations-in-dl", EARLIER_WORK, "Normalizations-in-Deep-Learning", "Normalizations in deep learning: "
        "batch, instance, batch-instance, layer and group norm in a CIFAR-10 ResNet (course project of Harman Singh)",
        "2021", "GitHub repository (MIT license)", "https://github.com/HarmanDotpy/Normalizations-in-Deep-Learning",
        "study 2: its protocol, published results and defects", "Normalizations-in-Deep-Learning",
    ),
    Reference(
        "convnorm-course-paper", EARLIER_WORK, "The ConvNorm course paper",
        "ResNet18 Efficacy Across Normalization Techniques, Label Noise, and Various Datasets (a course paper, "
        "December 2023; its code is the repository yashika-batra/convnorm)", "2023",
        "Course paper and GitHub repository (no license file)", "https://github.com/yashika-batra/convnorm",
        "study 3: its protocol, published results and its port of ConvNorm", "the course paper's code",
    ),
    Reference(
        "convnorm-official", OFFICIAL_CODE, "ConvNorm's official code", "Convolutional Normalization (the code of "
        "Liu et al. 2021)", "2021", "GitHub repository (no license: described here, never copied)",
        "https://github.com/shengliu66/ConvNorm", "study 3: its layer's defaults, label noise and validation split",
        "the official ConvNorm code",
    ),
    Reference(
        "liu2021", METHOD, "Sheng Liu et al.", "Convolutional Normalization: Improving "
        "Deep Convolutional Network Robustness and Training", "2021", "NeurIPS 2021, arXiv:2103.00673",
        "https://arxiv.org/abs/2103.00673", "study 3: ConvNorm (`conv_layer: convnorm`)", "Liu et al. 2021",
    ),
    Reference(
        "nam2018", METHOD, "Nam and Kim", "Batch-Instance Normalization for Adaptively Style-Invariant Neural "
        "Networks", "2018", "NeurIPS 2018, arXiv:1805.07925", "https://arxiv.org/abs/1805.07925",
        "study 2: batch-instance norm (`bin`) and its gate", "Nam and Kim 2018",
    ),
    Reference(
        "wu2018", METHOD, "Wu and He", "Group Normalization", "2018", "ECCV 2018, arXiv:1803.08494",
        "https://arxiv.org/abs/1803.08494", "study 2: group norm (`gn`, `torch_gn`)", "Wu and He 2018",
    ),
    Reference(
        "ioffe2015", METHOD, "Ioffe and Szegedy", "Batch Normalization: Accelerating Deep Network Training by Reducing "
        "Internal Covariate Shift", "2015", "ICML 2015, arXiv:1502.03167", "https://arxiv.org/abs/1502.03167",
        "studies 2 and 3: batch norm (`bn`, `torch_bn`)", "Ioffe and Szegedy 2015",
    ),
    Reference(
        "ulyanov2016", METHOD, "Ulyanov, Vedaldi and Lempitsky", "Instance Normalization: The Missing Ingredient for "
        "Fast Stylization", "2016", "arXiv:1607.08022", "https://arxiv.org/abs/1607.08022",
        "study 2: instance norm (`in`); study 1's per-image `instance` setting is its input-level analogue",
        "Ulyanov et al. 2016",
    ),
    Reference(
        "ba2016", METHOD, "Ba, Kiros and Hinton", "Layer Normalization", "2016", "arXiv:1607.06450",
        "https://arxiv.org/abs/1607.06450", "study 2: layer norm (`ln`)", "Ba et al. 2016",
    ),
    Reference(
        "he2016", METHOD, "He, Zhang, Ren and Sun", "Deep Residual Learning for Image Recognition", "2016",
        "CVPR 2016, arXiv:1512.03385", "https://arxiv.org/abs/1512.03385",
        "every study: the ResNets (ResNet18 and ResNet50 of study 1, the CIFAR ResNets of studies 2 and 3)",
        "He et al. 2016",
    ),
    Reference(
        "huang2017", METHOD, "Huang, Liu, van der Maaten and Weinberger", "Densely Connected Convolutional Networks",
        "2017", "CVPR 2017, arXiv:1608.06993", "https://arxiv.org/abs/1608.06993", "study 1: DenseNet121 and DenseNet161",
        "Huang et al. 2017",
    ),
    Reference(
        "krizhevsky2009", DATA_SET, "Krizhevsky", "Learning Multiple Layers of Features from Tiny Images (CIFAR-10 and "
        "CIFAR-100)", "2009", "Technical report, University of Toronto", "https://www.cs.toronto.edu/~kriz/cifar.html",
        "every study: CIFAR-10; study 1: CIFAR-100", "Krizhevsky 2009",
    ),
    Reference(
        "netzer2011", DATA_SET, "Netzer, Wang, Coates, Bissacco, Wu and Ng", "Reading Digits in Natural Images with "
        "Unsupervised Feature Learning (SVHN)", "2011", "NIPS 2011 Workshop on Deep Learning and Unsupervised "
        "Feature Learning", "http://ufldl.stanford.edu/housenumbers/", "study 1: SVHN", "Netzer et al. 2011",
    ),
    Reference(
        "tiny-imagenet", DATA_SET, "Stanford CS231n", "Tiny ImageNet-200 (200 classes of ImageNet at 64 px)", "n.d.",
        "The data set of Stanford's CS231n course (the official zip)", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        "study 1 and the dataset statistics chapter: Tiny ImageNet-200", "Tiny ImageNet-200",
    ),
)

EARLIER_WORKS: tuple[str, ...] = tuple(r.key for r in REFERENCES if r.kind in (EARLIER_WORK, OFFICIAL_CODE))


def reference(key: str) -> Reference:
    """The entry ``key``; an unknown key is a KeyError naming the known ones."""
    for entry in REFERENCES:
        if entry.key == key:
            return entry
    raise KeyError(f"no reference {key!r}; known: {', '.join(r.key for r in REFERENCES)}")


def target(key: str) -> str:
    """The MyST target of an entry on the references page: ``ref-<key>``."""
    return f"ref-{reference(key).key}"


def link(key: str, text: str | None = None) -> str:
    """A Markdown link to the work itself: ``[text](url)``, ``text`` defaulting to its short citation."""
    entry = reference(key)
    return f"[{text or entry.short}]({entry.url})"


def entry_markdown(entry: Reference) -> str:
    """One entry of the page: its target, then who, what, when, where, the address and where the book uses it."""
    return (
        f"({target(entry.key)})=\n"
        f"**{entry.authors}** ({entry.year}). *{entry.title}*. {entry.venue}. <{entry.url}>  \n"
        f"Used for: {entry.used_for}.\n"
    )


def references_markdown() -> str:
    """The references page: every entry, grouped by kind, in the order of :data:`REFERENCES`."""
    lines = [
        f"({REFERENCES_LABEL})=",
        "# References",
        "",
        "Every work this book restates, corrects or uses, with its address. The earlier works are the three "
        "public projects the studies restate (their defects, with the file and function of the earlier code "
        "each is in, are listed in {doc}`the errata chapter <errata>`); the official ConvNorm code has no license, "
        "so it is described and re-derived here, never copied.",
        "",
    ]
    for kind in KINDS:
        entries = [entry for entry in REFERENCES if entry.kind == kind]
        if entries:
            lines += [f"## {HEADINGS[kind]}", ""]
            lines += [entry_markdown(entry) for entry in entries]
    return "\n".join(lines)
