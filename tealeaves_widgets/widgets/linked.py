"""`Linked`: several views in one column with their cursors linked in the
browser, so moving the explorer's layer slider moves the residual view's
and the cross-layer view's cursor, and picking a query (a generation step)
in one picks it in the others.

The links are ipywidgets' `jslink`s, models of their own that the page
holds: they work in a live kernel and in an exported page alike, with no
kernel round trip. Each view is linked to the first one, trait by trait,
where both have the trait.
"""

from __future__ import annotations

from typing import Any

import ipywidgets
import traitlets as t

from ..errors import ArgumentError, ArgumentTypeError

__all__ = ["LINKED_TRAITS", "Linked"]

LINKED_TRAITS = ("layer", "query")
"""The synced selections `Linked` links by default."""


class Linked(ipywidgets.VBox):
    """Views stacked in a column, their `layer` and `query` linked in the
    browser (ipywidgets' jslink), in a kernel and in an exported page:

        tw.Linked(tw.Explorer(run), tw.ResidualView(run.residual_decomposition()))

    `traits` names what to link (default `LINKED_TRAITS`); a view lacking a
    trait is left out of that link. Each view starts at the first view's
    selection where it accepts it."""

    links = t.List(t.Instance(ipywidgets.Widget)).tag(sync=True, **ipywidgets.widget_serialization)
    """The jslink widgets (held here so a page embeds them with the views)."""

    def __init__(self, *views: ipywidgets.DOMWidget, traits: tuple[str, ...] = LINKED_TRAITS):
        if len(views) < 2:
            raise ArgumentError(
                f"Linked needs at least two views to link, got {len(views)}; e.g. "
                "tw.Linked(tw.Explorer(run), tw.ResidualView(decomposition))."
            )
        for i, view in enumerate(views):
            if not isinstance(view, ipywidgets.DOMWidget):
                raise ArgumentTypeError(
                    f"Linked takes views (widgets such as tw.Explorer or tw.ResidualView); "
                    f"argument {i} is a {type(view).__name__}. Show a result's view with "
                    "tw.Explorer(run), tw.ResidualView(decomposition), ..."
                )
        first, links = views[0], []
        for view in views[1:]:
            for name in traits:
                if not (_synced(first, name) and _synced(view, name)):
                    continue
                _start_at(view, name, getattr(first, name))
                links.append(ipywidgets.jslink((first, name), (view, name)))
        if not links:
            raise ArgumentError(
                f"None of {list(traits)} is a synced selection of both the first view "
                f"({type(first).__name__}) and another one; nothing to link."
            )
        super().__init__(children=list(views), links=links)

    @property
    def linked(self) -> list[tuple[str, str, str]]:
        """(trait, first view's class, other view's class) per link."""
        out = []
        for link in self.links:
            (source, name), (target, _) = link.source, link.target
            out.append((name, type(source).__name__, type(target).__name__))
        return out


def _synced(view: Any, name: str) -> bool:
    return view.has_trait(name) and bool(view.trait_metadata(name, "sync"))


def _start_at(view: Any, name: str, value: Any) -> None:
    """Set `view.name` to the first view's value when the view accepts it
    (a query the other run lacks keeps the view's own)."""
    try:
        setattr(view, name, value)
    except t.TraitError:
        pass
