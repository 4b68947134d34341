"""Results and what is computed from them: `Run` (one captured pass),
`RunSet` (many cases), `Comparison` (variants against a baseline), the
statistics behind their intervals, and the rules for selecting a query,
region, layer or head.

May import: numpy, pandas and `tealeaves_widgets.errors`. Never torch,
plotly, anywidget or any other layer of this package. What a result offers
from the layers above (views, figures, files) goes through `core.seam`.
"""
