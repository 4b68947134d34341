"""JupyterLab's light and dark themes on an exported page: the `--jp-*`
variables the views read, with JupyterLab 4.6's values (copied from
`jupyterlab/themes/@jupyterlab/theme-{light,dark}-extension/index.css`, the
`--md-*` references resolved to their fallbacks), set on `<body>` as
JupyterLab sets them on its page."""

from __future__ import annotations

JUPYTERLAB_DARK = {
    "layout-color0": "#111",
    "layout-color1": "#212121",
    "layout-color2": "#424242",
    "layout-color3": "#616161",
    "ui-font-color0": "#fff",
    "ui-font-color1": "rgba(255,255,255,.87)",
    "ui-font-color2": "rgba(255,255,255,.54)",
    "ui-font-color3": "rgba(255,255,255,.38)",
    "content-font-color1": "#fff",
    "border-color0": "#616161",
    "border-color1": "#616161",
    "border-color2": "#424242",
    "border-color3": "#212121",
    "brand-color1": "#2196f3",
    "inverse-layout-color1": "white",
    "ui-inverse-font-color0": "#000",
    "warn-color0": "#f57c00",
    "warn-color2": "#ffb74d",
    "success-color0": "#388e3c",
    "success-color1": "#4caf50",
    "error-color1": "#f44336",
}
JUPYTERLAB_LIGHT = {
    "layout-color0": "white",
    "layout-color1": "white",
    "layout-color2": "#eee",
    "layout-color3": "#bdbdbd",
    "ui-font-color0": "#000",
    "ui-font-color1": "rgba(0,0,0,.87)",
    "ui-font-color2": "rgba(0,0,0,.54)",
    "ui-font-color3": "rgba(0,0,0,.38)",
    "content-font-color1": "rgba(0,0,0,.87)",
    "border-color0": "#bdbdbd",
    "border-color1": "#bdbdbd",
    "border-color2": "#e0e0e0",
    "border-color3": "#eee",
    "brand-color1": "#1976d2",
    "inverse-layout-color1": "#212121",
    "ui-inverse-font-color0": "#fff",
    "warn-color0": "#e65100",
    "warn-color2": "#ffb74d",
    "success-color0": "#1b5e20",
    "success-color1": "#388e3c",
    "error-color1": "#d32f2f",
}
THEMES = {"light": JUPYTERLAB_LIGHT, "dark": JUPYTERLAB_DARK}


def themed(html: str, theme: str) -> str:
    """`html` (an exported page) with JupyterLab's `theme` ("light" or
    "dark") variables on its body, the body drawn in them, and
    `data-jp-theme-light` set as JupyterLab sets it."""
    variables = "".join(f"--jp-{name}: {value}; " for name, value in THEMES[theme].items())
    style = (
        f"<style>body {{ {variables}background: var(--jp-layout-color0); "
        "color: var(--jp-ui-font-color1); }</style>"
    )
    light = "true" if theme == "light" else "false"
    html = html.replace("</head>", style + "</head>", 1)
    return html.replace("<body>", f'<body data-jp-theme-light="{light}">', 1)
