"""From what the user typed to tokens with named regions: `Case` (roles and
text), rendering with the model's chat template (`render`), the regions.json
schema (`regions`) and its resolution on a rendered prompt into regions,
query positions and tracked token ids (`resolve`).

May import: numpy, `tealeaves_widgets.errors` and `tealeaves_widgets.core`
(the `RegionInfo` a resolution produces). A tokenizer is passed in, never
imported: no torch, transformers, plotly or widgets here.
"""
