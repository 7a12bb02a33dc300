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


NOT_GIVEN = "not given"  # a detail the work (or what is known of it) does not give: never guessed
MAX_NAMED_AUTHORS = 3  # more authors than this are cited as the first one's family name and "et al."


@dataclass(frozen=True)
class Reference:
    """One work: who, what, when, where, and the address a reader follows.

    ``authors`` are family names in the work's order, () where the work names none (a repository known only
    by its GitHub account, ``account``); ``et_al`` says the list stops before the last author. ``year`` and
    ``venue`` are :data:`NOT_GIVEN` where unknown; ``arxiv`` is the arXiv id where the work has one."""

    key: str  # the target's suffix: ``ref-<key>``
    kind: str  # one of KINDS
    authors: tuple[str, ...]
    title: str
    year: str
    venue: str  # a conference, journal or report, or what kind of repository
    url: str
    used_for: str  # where this book uses it, in a few words
    short: str  # how the text cites it: ``Liu et al. 2021``, or a repository's name
    arxiv: str = ""
    et_al: bool = False
    account: str = ""  # a repository's GitHub account
    cited_in: tuple[str, ...] = ()  # the chapters (notebooks/<name>.ipynb) that use it and must cite it

    def author_text(self) -> str:
        """The authors as the page gives them: ``Ioffe and Szegedy``, ``Ba, Kiros and Hinton``, ``He et al.``
        (more than :data:`MAX_NAMED_AUTHORS`), or :data:`NOT_GIVEN` with the repository's account."""
        if not self.authors:
            return f"authors {NOT_GIVEN} (GitHub account {self.account})" if self.account else f"authors {NOT_GIVEN}"
        if self.et_al or len(self.authors) > MAX_NAMED_AUTHORS:
            return f"{self.authors[0]} et al."
        if len(self.authors) == 1:
            return self.authors[0]
        return ", ".join(self.authors[:-1]) + f" and {self.authors[-1]}"

    def year_text(self) -> str:
        """The year, or ``year not given``."""
        return f"year {NOT_GIVEN}" if self.year == NOT_GIVEN else self.year

    def where_text(self) -> str:
        """The venue and the arXiv id: ``ICML 2015, arXiv:1502.03167``."""
        return ", ".join(part for part in (self.venue, f"arXiv:{self.arxiv}" if self.arxiv else "") if part)


STUDY_CHAPTERS = ("input_normalization", "normalization_layers", "convnorm_label_noise")

REFERENCES: tuple[Reference, ...] = (
    Reference(
        "normalization-test", EARLIER_WORK, (), "Normalization-Test: comparison normalization to pre-process images "
        "when using a pre-trained model (the repository's own title and description)", NOT_GIVEN,
        "GitHub repository (MIT license)", "https://github.com/TooTouch/Normalization-Test",
        "study 1: its protocol, published table and defects", "Normalization-Test", account="TooTouch",
        cited_in=("input_normalization", "errata", "dataset_statistics"),
    ),
    Reference(
        "normalizations-in-dl", EARLIER_WORK, (), "Normalizations in Deep Learning: batch, instance, batch-instance, "
        "layer and group norm in a CIFAR-10 ResNet (a course project, with a report in the repository)", NOT_GIVEN,
        "GitHub repository (MIT license)", "https://github.com/HarmanDotpy/Normalizations-in-Deep-Learning",
        "study 2: its protocol, published results and defects", "Normalizations-in-Deep-Learning",
        account="HarmanDotpy", cited_in=("normalization_layers", "errata"),
    ),
    Reference(
        "convnorm-course-paper", EARLIER_WORK, (), "ResNet18 Efficacy Across Normalization Techniques, Label Noise, "
        "and Various Datasets (a course paper; its code is the repository at the address)", "2023",
        "Course paper (December 2023; where it was published is not given) and its GitHub repository (no license "
        "file)", "https://github.com/yashika-batra/convnorm",
        "study 3: its protocol, published results and its port of ConvNorm", "the course paper's code",
        account="yashika-batra", cited_in=("convnorm_label_noise", "errata"),
    ),
    Reference(
        "convnorm-official", OFFICIAL_CODE, ("Liu",), "ConvNorm: the official implementation of Convolutional "
        "Normalization (the code of Liu et al. 2021, whose authors it names as its own)", NOT_GIVEN,
        "GitHub repository (no license: described here, never copied)", "https://github.com/shengliu66/ConvNorm",
        "study 3: its layer's defaults, label noise and validation split", "the official ConvNorm code",
        et_al=True, account="shengliu66", cited_in=("convnorm_label_noise", "errata"),
    ),
    Reference(
        "liu2021", METHOD, ("Liu",), "Convolutional Normalization: Improving Deep Convolutional Network Robustness "
        "and Training", "2021", "NeurIPS 2021", "https://arxiv.org/abs/2103.00673",
        "study 3: ConvNorm (`conv_layer: convnorm`)", "Liu et al. 2021", arxiv="2103.00673", et_al=True,
        cited_in=("convnorm_label_noise", "errata"),
    ),
    Reference(
        "nam2018", METHOD, ("Nam", "Kim"), "Batch-Instance Normalization for Adaptively Style-Invariant Neural "
        "Networks", "2018", "NeurIPS 2018", "https://arxiv.org/abs/1805.07925",
        "study 2: batch-instance norm (`bin`) and its gate", "Nam and Kim 2018", arxiv="1805.07925",
        cited_in=("normalization_layers",),
    ),
    Reference(
        "wu2018", METHOD, ("Wu", "He"), "Group Normalization", "2018", "ECCV 2018", "https://arxiv.org/abs/1803.08494",
        "study 2: group norm (`gn`, `torch_gn`)", "Wu and He 2018", arxiv="1803.08494",
        cited_in=("normalization_layers",),
    ),
    Reference(
        "ioffe2015", METHOD, ("Ioffe", "Szegedy"), "Batch Normalization: Accelerating Deep Network Training by Reducing "
        "Internal Covariate Shift", "2015", "ICML 2015", "https://arxiv.org/abs/1502.03167",
        "studies 2 and 3: batch norm (`bn`, `torch_bn`)", "Ioffe and Szegedy 2015", arxiv="1502.03167",
        cited_in=("normalization_layers", "convnorm_label_noise"),
    ),
    Reference(
        "ulyanov2016", METHOD, ("Ulyanov", "Vedaldi", "Lempitsky"), "Instance Normalization: The Missing Ingredient "
        "for Fast Stylization", "2016", "arXiv preprint", "https://arxiv.org/abs/1607.08022",
        "study 2: instance norm (`in`); study 1's per-image `instance` setting is its input-level analogue",
        "Ulyanov et al. 2016", arxiv="1607.08022", cited_in=("normalization_layers",),
    ),
    Reference(
        "ba2016", METHOD, ("Ba", "Kiros", "Hinton"), "Layer Normalization", "2016", "arXiv preprint",
        "https://arxiv.org/abs/1607.06450", "study 2: layer norm (`ln`)", "Ba et al. 2016", arxiv="1607.06450",
        cited_in=("normalization_layers",),
    ),
    Reference(
        "he2016", METHOD, ("He", "Zhang", "Ren", "Sun"), "Deep Residual Learning for Image Recognition", "2016",
        "CVPR 2016", "https://arxiv.org/abs/1512.03385",
        "every study: the ResNets (ResNet18 and ResNet50 of study 1, the CIFAR ResNets of studies 2 and 3)",
        "He et al. 2016", arxiv="1512.03385", cited_in=STUDY_CHAPTERS,
    ),
    Reference(
        "huang2017", METHOD, ("Huang", "Liu", "van der Maaten", "Weinberger"), "Densely Connected Convolutional "
        "Networks", "2017", "CVPR 2017", "https://arxiv.org/abs/1608.06993", "study 1: DenseNet121 and DenseNet161",
        "Huang et al. 2017", arxiv="1608.06993", cited_in=("input_normalization",),
    ),
    Reference(
        "russakovsky2015", DATA_SET, ("Russakovsky",), "ImageNet Large Scale Visual Recognition Challenge", "2015",
        "International Journal of Computer Vision (IJCV) 2015", "https://arxiv.org/abs/1409.0575",
        "study 1 and the dataset statistics chapter: ImageNet, the pretraining set whose channel statistics "
        "`pretrain` standardizes with and on which the published checkpoints were trained",
        "Russakovsky et al. 2015", arxiv="1409.0575", et_al=True, cited_in=("input_normalization", "dataset_statistics"),
    ),
    Reference(
        "krizhevsky2009", DATA_SET, ("Krizhevsky",), "Learning Multiple Layers of Features from Tiny Images (CIFAR-10 "
        "and CIFAR-100)", "2009", "Technical report, University of Toronto", "https://www.cs.toronto.edu/~kriz/cifar.html",
        "every study: CIFAR-10; study 1: CIFAR-100", "Krizhevsky 2009", cited_in=(*STUDY_CHAPTERS, "dataset_statistics"),
    ),
    Reference(
        "netzer2011", DATA_SET, ("Netzer", "Wang", "Coates", "Bissacco", "Wu", "Ng"), "Reading Digits in Natural "
        "Images with Unsupervised Feature Learning (SVHN)", "2011", "NIPS 2011 Workshop on Deep Learning and "
        "Unsupervised Feature Learning", "http://ufldl.stanford.edu/housenumbers/", "study 1: SVHN",
        "Netzer et al. 2011", cited_in=("input_normalization",),
    ),
    Reference(
        "tiny-imagenet", DATA_SET, ("Le", "Yang"), "Tiny ImageNet Visual Recognition Challenge (Tiny ImageNet-200: 200 "
        "classes of ImageNet at 64 px)", "2015", "Stanford CS231N course report; the data set is the course's "
        "official zip at the address", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        "study 1 and the dataset statistics chapter: Tiny ImageNet-200", "Le and Yang 2015",
        cited_in=("input_normalization", "dataset_statistics"),
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
        f"**{entry.author_text()}** ({entry.year_text()}). *{entry.title}*. {entry.where_text()}. <{entry.url}>  \n"
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
        "so it is described and re-derived here, never copied. A detail a work does not give (the earlier "
        "repositories name no author, and most no year) is marked *not given*, never guessed; an entry with more "
        f"than {MAX_NAMED_AUTHORS} authors names the first.",
        "",
    ]
    for kind in KINDS:
        entries = [entry for entry in REFERENCES if entry.kind == kind]
        if entries:
            lines += [f"## {HEADINGS[kind]}", ""]
            lines += [entry_markdown(entry) for entry in entries]
    return "\n".join(lines)
