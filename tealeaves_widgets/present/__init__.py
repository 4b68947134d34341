"""Presenting results without a kernel: region colours (`palette`), static
plotly figures (`figures`), PNG and GIF images drawn with matplotlib
(`render`, imported on first use: matplotlib is an optional extra), what a
comparison report says (`report`) and its markdown and HTML renderings
(`markdown`, `page`, which also holds the shell of every standalone page).

May import: numpy, pandas, plotly, matplotlib (with Pillow; only here),
`tealeaves_widgets.errors` and `core`. Never torch, models or widgets (the
HTML report's interactive views are added by `widgets.report_page`).
Registers the results' figures, images and `Comparison.report` with
`core.seam`.
"""

from . import figures, markdown

__all__ = ["figures", "markdown"]
