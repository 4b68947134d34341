"""Standalone HTML: widgets, or a whole executed notebook, that render and
stay interactive with no kernel and no network.

A page needs three scripts besides the widget state: require.js, the
html-manager (`embed-amd.js`, which renders saved widget state) and the
anywidget runtime. `ipywidgets.embed` and nbconvert link the first two from
CDNs and the third is fetched by module name from a CDN at render time; here
all three are inlined from the installed package (`static/vendor/`, copied
from js/node_modules at build time, and anywidget's own AMD module). Our
bundles travel inside the widget state (`_esm`), so they need nothing else.

A notebook goes through nbconvert's lab template with those scripts inlined
and MathJax and Mermaid (CDN only) left out (`templates/tealeaves_offline`).
Its widgets need their state saved in the notebook: nbclient saves it (the
default `store_widget_state=True`); in JupyterLab, turn on "Save Widget State
Automatically" in the Settings menu before saving.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import ipywidgets
from ipywidgets.embed import dependency_state, embed_data, escape_script

from ..core import seam
from ..core.ablation import Ablation
from ..core.attribution import Attribution
from ..core.compare import Comparison
from ..core.generation import Generation
from ..core.head_atlas import HeadAtlas
from ..core.head_gates import HeadGates
from ..core.prev_token import PrevTokenTest
from ..core.residuals import CrossLayerCosine, ResidualDecomposition
from ..core.run import Run
from ..core.runset import RunSet
from ..core.scenario import ScenarioResult
from ..core.states import Snapshots
from ..errors import ExportError, ExportWarning
from ..present.page import standalone_page
from ._bundle import BUILD_HINT, STATIC

_ANYWIDGET_DEFINE = re.compile(r'define\(\s*\[\s*"@jupyter-widgets/base"\s*\]\s*,')

_PAGE_STYLE = "body { margin: 16px; background: #fff; }"

RESULTS = (
    Run,
    RunSet,
    Comparison,
    Ablation,
    Attribution,
    HeadGates,
    HeadAtlas,
    PrevTokenTest,
    Generation,
    Snapshots,
    ResidualDecomposition,
    CrossLayerCosine,
    ScenarioResult,
)
"""Results `export_html` shows in their view (`display(result)`'s)."""


TEMPLATES = Path(__file__).resolve().parent / "templates"
"""nbconvert templates of this package (`tealeaves_offline`)."""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

EXPORT_HINT = 'Exporting notebooks needs nbconvert: pip install "tealeaves-widgets[export]".'


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


@dataclass(frozen=True)
class EmbeddedWidgets:
    """Widgets ready to inline in a page that renders them with no kernel."""

    state: str
    """The <script> holding the widgets' state (JSON)."""
    runtime: str
    """The <script>s that render it: require.js, the html-manager and anywidget, inlined."""
    views: list[str]
    """A view <script> per widget, in order: where the page shows it."""


def embed_widgets(widgets: list[ipywidgets.Widget]) -> EmbeddedWidgets:
    """The state of `widgets` (and of the widgets they hold), the scripts that
    render it and a view tag per widget, for `page_html` and the HTML report."""
    # only these widgets: by default ipywidgets embeds every live widget
    state = dependency_state(widgets, drop_defaults=False)
    data = embed_data(widgets, drop_defaults=False, state=state)
    state_json = escape_script(json.dumps(data["manager_state"], separators=(",", ":")))
    runtime = (_vendor("require.js"), _vendor("html-manager-embed-amd.js"), anywidget_amd())
    return EmbeddedWidgets(
        state=f'<script type="{WIDGET_STATE}">\n{state_json}\n</script>',
        runtime="\n".join(f"<script>{_inline(source)}</script>" for source in runtime),
        views=[
            f'<script type="{WIDGET_VIEW}">{escape_script(json.dumps(spec))}</script>'
            for spec in data["view_specs"]
        ],
    )


def _widgets(obj: Any) -> list[ipywidgets.Widget]:
    if isinstance(obj, RESULTS):  # a RunSet before the iterables below
        return [seam.call("view", obj)]
    if isinstance(obj, ipywidgets.Widget):
        # a view shown with its companions (HeadAtlasView with run=) says which widget holds them
        return [getattr(obj, "_tw_display", obj)]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        widgets = [w for item in obj for w in _widgets(item)]
        if widgets:
            return widgets
    raise ExportError(
        "export_html expects a widget, a Run, a RunSet, a Comparison, an Ablation, an "
        "Attribution, HeadGates, a HeadAtlas, a PrevTokenTest, a Generation, Snapshots, a "
        "ResidualDecomposition, a CrossLayerCosine, a ScenarioResult or a list of them, got "
        f"{type(obj).__name__}."
    )


def page_html(obj: Any, title: str | None = None) -> str:
    """The standalone page of `obj`: a widget, a Run (shown in an `Explorer`),
    a Comparison (a `VariantDiff`), a RunSet (an `AggregateView`), an Ablation
    (an `AblationView`), an Attribution (an `AttributionView`), HeadGates (a
    `HeadGatesView`), a PrevTokenTest (a `PrevTokenView`), a Generation (a
    `GenerationView`), Snapshots (a `SnapshotsView`), a ResidualDecomposition
    (a `ResidualView`), a CrossLayerCosine (a `CrossLayerView`), or a list of
    them."""
    embedded = embed_widgets(_widgets(obj))
    body = "\n".join([embedded.runtime, embedded.state, *embedded.views])
    return standalone_page(title or "tealeaves-widgets", _PAGE_STYLE, body)


# -- notebooks ---------------------------------------------------------------


def _is_notebook(obj: Any) -> bool:
    if isinstance(obj, (str, PathLike)):
        if Path(obj).suffix != ".ipynb":
            raise ExportError(
                f"export_html takes a path only to a notebook (.ipynb), got {str(obj)!r}; "
                "pass a widget or a Run object to export a view."
            )
        return True
    return isinstance(obj, Mapping) and "cells" in obj and "nbformat" in obj


def _widget_views(nb: Mapping) -> list[str]:
    """Model ids of the widgets the notebook's outputs display."""
    ids = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if isinstance(view, Mapping) and "model_id" in view:
                ids.append(view["model_id"])
    return ids


def _check_widget_state(nb: Mapping, name: str) -> None:
    views = _widget_views(nb)
    saved = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [model_id for model_id in views if model_id not in saved]
    if missing:
        raise ExportError(
            f"{name}: {len(missing)} of the {len(views)} widgets its cells display have no "
            "saved state, so they would show as blank cells. Execute the notebook with "
            "nbclient (it saves widget state by default; `python -m tealeaves_widgets "
            "quickstart --notebook PATH` does it), or in JupyterLab turn on Settings > "
            '"Save Widget State Automatically", run all cells, save, and export again.'
        )


_SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?(</script>)", re.DOTALL | re.IGNORECASE)
_FETCHING_TAG = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?"
    r"\b(?:src|href|data)\s*=\s*[\"']?\s*((?:https?:)?//[^\s\"'>]+)",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"url\(\s*[\"']?((?:https?:)?//[^\s\"')]+)", re.IGNORECASE)


def network_references(page: str) -> list[str]:
    """URLs the page would fetch on opening: script, link, image and frame
    sources and CSS `url(...)`s (links a reader may click are not requests).
    Inline scripts are skipped, so URLs inside JavaScript or widget state
    (a prompt that mentions one) do not count."""
    markup = _SCRIPT_BODY.sub(r"\1\2", page)
    return _FETCHING_TAG.findall(markup) + _CSS_URL.findall(markup)


def _undrawable(nb: Mapping, shown: list[str]) -> list[str]:
    """Mimetypes of outputs that offer none of the `shown` formats (e.g. a
    plotly figure saved as application/vnd.plotly.v1+json alone)."""
    missing = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and not set(data) & set(shown):
                missing.append(next(iter(data)))
    return missing


def _read_notebook(notebook: Any) -> tuple[Any, str]:
    try:
        import nbformat
    except ImportError as error:
        raise ExportError(EXPORT_HINT) from error
    if isinstance(notebook, (str, PathLike)):
        path = Path(notebook)
        if not path.is_file():
            raise ExportError(f"No notebook at {path}.")
        return nbformat.read(path, as_version=4), path.stem
    return nbformat.from_dict(dict(notebook)), "notebook"


def _template_dirs() -> tuple[list[str], list[str]]:
    """(extra_template_basedirs, extra_template_paths) of the exporter: ours,
    and nbconvert's own templates when the Jupyter data path does not reach
    them (a virtual environment that borrows nbconvert from the system's
    site-packages looks only under its own prefix)."""
    import nbconvert
    from jupyter_core.paths import jupyter_path

    basedirs, paths = [str(TEMPLATES)], []
    if not any((Path(p) / "nbconvert" / "templates" / "lab").is_dir() for p in jupyter_path()):
        for parent in Path(nbconvert.__file__).resolve().parents:
            templates = parent / "share" / "jupyter" / "nbconvert" / "templates"
            if (templates / "lab").is_dir():
                basedirs.append(str(templates))
                paths.append(str(templates))  # for {% extends 'lab/index.html.j2' %}
                break
    return basedirs, paths


def notebook_html(notebook: Any, title: str | None = None) -> str:
    """The standalone page of an executed notebook (a path or an nbformat
    node): nbconvert's HTML with the widget state embedded and every script
    inlined. Warns (`ExportWarning`) if the page would still fetch anything,
    e.g. an image a markdown cell links from the web."""
    nb, name = _read_notebook(notebook)
    _check_widget_state(nb, name)
    try:
        from nbconvert import HTMLExporter
    except ImportError as error:
        raise ExportError(EXPORT_HINT) from error
    basedirs, paths = _template_dirs()
    exporter = HTMLExporter(
        template_name="tealeaves_offline",
        extra_template_basedirs=basedirs,
        extra_template_paths=paths,
    )
    scripts = {
        "require_js": _inline(_vendor("require.js")),
        "html_manager": _inline(_vendor("html-manager-embed-amd.js")),
        "anywidget": _inline(anywidget_amd()),
    }
    title = title or nb.get("metadata", {}).get("title") or name
    page, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title}, "tealeaves": scripts}
    )
    undrawable = _undrawable(nb, exporter.default_config["NbConvertBase"]["display_data_priority"])
    if undrawable:
        warnings.warn(
            f"{len(undrawable)} output(s) have no format an HTML page shows (e.g. "
            f"{undrawable[0]}) and are left out of the page. A plotly figure can be written "
            "on its own with fig.write_html(path, include_plotlyjs=True).",
            ExportWarning,
            stacklevel=3,
        )
    fetched = network_references(page)
    if fetched:
        warnings.warn(
            f"The exported page would fetch {len(fetched)} resource(s) from the network, "
            f"e.g. {fetched[:3]}; offline they will be missing. Embed them in the notebook "
            "(e.g. images as attachments) to make the page self-contained.",
            ExportWarning,
            stacklevel=3,
        )
    return page


def export_html(obj: Any, path: str | PathLike[str], title: str | None = None) -> Path:
    """Write one HTML file that renders with no kernel and makes no network
    request, and return its path. `obj` is a widget, a Run (shown in an
    `Explorer`), a Comparison (a `VariantDiff`), a RunSet (an `AggregateView`),
    an Ablation (an `AblationView`), an Attribution, HeadGates, a PrevTokenTest or
    Snapshots (their views), a list of them, or an executed notebook: a path to an
    .ipynb file or an nbformat node, whose widgets must have saved state."""
    path = Path(path)
    page = notebook_html(obj, title) if _is_notebook(obj) else page_html(obj, title)
    path.write_text(page, encoding="utf-8")
    return path
