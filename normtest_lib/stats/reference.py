"""Channel statistics as published elsewhere, kept only to compare computed values against.

Nothing in the library normalizes with these: statistics used for training
are always computed from the data (see ``stats.channel_stats``).
"""

from __future__ import annotations

from .channel import ChannelStats

IMAGENET = ChannelStats((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# As used by the input-normalization study's reference code (STUDIES.md, study 1).
PUBLISHED: dict[str, ChannelStats] = {
    "imagenet": IMAGENET,
    "cifar10": ChannelStats((0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)),
    "cifar100": ChannelStats((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "svhn": ChannelStats((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "tiny_imagenet_200": ChannelStats((0.4802, 0.4481, 0.3975), (0.2764, 0.2689, 0.2816)),
}

# The std widely copied into CIFAR-10 code (and ConvNorm's defaults) that is not CIFAR-10's std.
CIFAR10_MISCOPIED_STD = (0.2023, 0.1994, 0.2010)

# The earlier work's "Table 1": each training set standardized with ImageNet statistics.
# Its Tiny ImageNet row was computed on BGR images (STUDIES.md); the book recomputes all rows.
PUBLISHED_TABLE1: dict[str, ChannelStats] = {
    "cifar10": ChannelStats((0.03, 0.12, 0.18), (1.08, 1.09, 1.16)),
    "cifar100": ChannelStats((0.10, 0.14, 0.16), (1.17, 1.15, 1.23)),
    "svhn": ChannelStats((-0.21, -0.06, 0.30), (0.87, 0.90, 0.88)),
    "tiny_imagenet_200": ChannelStats((-0.38, -0.04, 0.33), (1.23, 1.20, 1.23)),
}


def published_for(dataset: str) -> ChannelStats | None:
    """The published statistics of registry name ``dataset``, or None.

    An ``imagefolder`` data set has no identity of its own: compare a CIFAR-10
    copy read that way with ``published_for("cifar10")`` explicitly.
    """
    return PUBLISHED.get(dataset)
