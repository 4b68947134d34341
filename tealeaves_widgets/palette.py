"""Region colours, shared by the widgets and the static figures (so a region
has the same colour everywhere). No plotting or widget imports here."""

from __future__ import annotations

from .run import Run

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


def region_colors(run: Run) -> dict[str, str]:
    """Colour of each region: grey for the template, the palette for the rest."""
    colors: dict[str, str] = {}
    others = [name for name, info in run.regions.items() if info.section != "template"]
    for name, info in run.regions.items():
        if info.section == "template":
            colors[name] = TEMPLATE_COLOR
    for i, name in enumerate(others):
        colors[name] = REGION_PALETTE[i % len(REGION_PALETTE)]
    return colors
