"""Command-line flags for how region masses are computed, shared by
`compare`, `report` and `render curves|aggregate`: --normalize, --exclude and
--share-level, read into the keywords `Run.curves`, `RunSet.aggregate` and
`tw.compare` take (see `tealeaves_widgets.core.masses`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.masses import AUTO, LEAVES, MassOptions
from ..core.run import NORMALIZATIONS
from ..errors import ArgumentError

NONE = "none"
"""--exclude none: exclude nothing."""


def add_mass_arguments(p: argparse.ArgumentParser, normalize: str) -> None:
    """Add --normalize (default `normalize`), --exclude and --share-level to `p`."""
    p.add_argument(
        "--normalize",
        default=normalize,
        choices=NORMALIZATIONS,
        help="attention mass per region: %(choices)s (%(default)s)",
    )
    p.add_argument(
        "--exclude",
        default=AUTO,
        help='tokens left out before masses are summed: "first" (the attention sink), region '
        'names, comma-separated, or "none"; "auto" (default): the first token for --normalize '
        "share, nothing otherwise",
    )
    p.add_argument(
        "--share-level",
        default=LEAVES,
        help='with --normalize share: "leaves" (each token in its innermost region, default) '
        "or a depth of the region tree (0: the built-in sections)",
    )


def exclude_value(text: str) -> str | tuple[str, ...] | None:
    """--exclude as the `exclude` keyword: "auto", None or a tuple of names."""
    text = text.strip()
    if text == AUTO:
        return AUTO
    if text == NONE:
        return None
    items = tuple(item.strip() for item in text.split(","))
    if AUTO in items or NONE in items:
        raise ArgumentError(
            f'--exclude {text!r} mixes "auto" or "none" with names; give "auto" alone, "none" '
            'alone, or names such as "first,template".'
        )
    if not all(items):
        raise ArgumentError(
            f'--exclude {text!r} holds an empty name; write e.g. "first" or "first,template" '
            '(comma-separated, no empty items), "none" or "auto".'
        )
    return items


def share_level_value(text: str) -> str | int:
    """--share-level as the `share_level` keyword: "leaves" or a depth."""
    if text == LEAVES:
        return LEAVES
    try:
        depth = int(text)
    except ValueError:
        depth = -1
    if depth < 0:
        raise ArgumentError(
            f'--share-level must be "leaves" or a depth >= 0 (0: the built-in sections; 1: '
            f"top-level regions), got {text!r}."
        )
    return depth


def mass_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """normalize, exclude and share_level from the parsed flags, checked
    together (a bad combination fails here, before any run is opened)."""
    keywords = {
        "normalize": args.normalize,
        "exclude": exclude_value(args.exclude),
        "share_level": share_level_value(args.share_level),
    }
    MassOptions(**keywords)
    return keywords
