"""Standalone HTML: widgets that render and stay interactive with no kernel
and no network.

A page needs three scripts besides the widget state: require.js, the
html-manager (`embed-amd.js`, which renders saved widget state) and the
anywidget runtime. `ipywidgets.embed` links the first two from CDNs and the
third is fetched by module name from a CDN at render time; here all three are
inlined from the installed package (`static/vendor/`, copied from js/node_modules
at build time, and anywidget's own AMD module). Our bundles travel inside the
widget state (`_esm`), so they need nothing else.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import ipywidgets
from ipywidgets.embed import dependency_state, embed_data, escape_script

from ..errors import TealeavesError
from ..run import Run
from ._bundle import BUILD_HINT, STATIC

_ANYWIDGET_DEFINE = re.compile(r'define\(\s*\[\s*"@jupyter-widgets/base"\s*\]\s*,')

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 16px; background: #fff; }}</style>
</head>
<body>
<script>{require_js}</script>
<script>{html_manager}</script>
<script>{anywidget}</script>
<script type="application/vnd.jupyter.widget-state+json">
{state}
</script>
{views}
</body>
</html>
"""


class ExportError(TealeavesError):
    """A page cannot be exported: an asset is missing or the object is not a widget."""


def _inline(source: str) -> str:
    """JavaScript safe inside <script>: the HTML parser ends a script at
    "</script" and treats "<!--" specially; both are escaped as JS sees them."""
    return source.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _vendor(name: str) -> str:
    path = STATIC / "vendor" / name
    if not path.is_file():
        raise ExportError(f"Cannot export: {path} is missing. {BUILD_HINT}")
    return path.read_text(encoding="utf-8")


def anywidget_amd() -> str:
    """anywidget's front end as a named AMD module "anywidget" (the installed
    package ships it anonymous, which require.js rejects in an inline script)."""
    source = (resources.files("anywidget") / "nbextension" / "index.js").read_text("utf-8")
    named, count = _ANYWIDGET_DEFINE.subn('define("anywidget", ["@jupyter-widgets/base"],', source)
    if count != 1:
        raise ExportError(
            "Cannot export: anywidget's nbextension/index.js no longer ends with "
            'define(["@jupyter-widgets/base"], ...); this anywidget version is not supported '
            "by export_html yet. Pin anywidget to the version in pyproject.toml."
        )
    return named


def _widgets(obj: Any) -> list[ipywidgets.Widget]:
    if isinstance(obj, Run):
        from .explorer import Explorer

        return [Explorer(obj)]
    if isinstance(obj, ipywidgets.Widget):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        widgets = [w for item in obj for w in _widgets(item)]
        if widgets:
            return widgets
    raise ExportError(
        f"export_html expects a widget, a Run or a list of them, got {type(obj).__name__}."
    )


def page_html(obj: Any, title: str = "tealeaves-widgets") -> str:
    """The standalone page of `obj`: a widget, a Run (shown in an `Explorer`),
    or a list of them."""
    views = _widgets(obj)
    # only these widgets: by default ipywidgets embeds every live widget
    state = dependency_state(views, drop_defaults=False)
    data = embed_data(views, drop_defaults=False, state=state)
    view_tags = "\n".join(
        '<script type="application/vnd.jupyter.widget-view+json">'
        + escape_script(json.dumps(spec))
        + "</script>"
        for spec in data["view_specs"]
    )
    return _PAGE.format(
        title=html.escape(title),
        require_js=_inline(_vendor("require.js")),
        html_manager=_inline(_vendor("html-manager-embed-amd.js")),
        anywidget=_inline(anywidget_amd()),
        state=escape_script(json.dumps(data["manager_state"], separators=(",", ":"))),
        views=view_tags,
    )


def export_html(obj: Any, path: str | PathLike[str], title: str = "tealeaves-widgets") -> Path:
    """Write `obj` (a widget, a Run shown in an `Explorer`, or a list of them)
    as one HTML file that renders with no kernel and makes no network request.
    Returns the path written."""
    path = Path(path)
    path.write_text(page_html(obj, title), encoding="utf-8")
    return path
