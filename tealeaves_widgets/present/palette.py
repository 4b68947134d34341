"""Region colours, shared by the widgets and the static figures (so a region
has the same colour everywhere). No plotting or widget imports here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..core.run import RegionInfo, Run

TEMPLATE_COLOR = "#9ca3af"
REGION_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
"""Tableau 10: distinguishable region colours, assigned in region order."""


def union_region_colors(runs: Iterable[Run], names: Sequence[str]) -> dict[str, str]:
    """Colour of each of `names` over several runs: grey for a region that is
    the chat template in any run, the palette in order for the rest."""
    template = {n for run in runs for n, info in run.regions.items() if info.section == "template"}
    others = [name for name in names if name not in template]
    colors = {name: TEMPLATE_COLOR for name in names if name in template}
    for i, name in enumerate(others):
        colors[name] = REGION_PALETTE[i % len(REGION_PALETTE)]
    return {name: colors[name] for name in names}


def region_colors(run: Run) -> dict[str, str]:
    """Colour of each region of one run: grey for the template, the palette for the rest."""
    return union_region_colors([run], list(run.regions))


def colors_of_regions(regions: dict[str, RegionInfo]) -> dict[str, str]:
    """`region_colors` of a result that holds regions but no run (an
    `Attribution`): the same colour per region as the run's views give it."""
    colors, others = {}, 0
    for name, info in regions.items():
        if info.section == "template":
            colors[name] = TEMPLATE_COLOR
        else:
            colors[name] = REGION_PALETTE[others % len(REGION_PALETTE)]
            others += 1
    return colors
