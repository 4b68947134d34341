"""Files: a `Run` as one safetensors file (`runfile`), many runs as a run
directory with an index (`rundir`), a scenario's result as a folder
(`scenario`), and the one reader and version rule of
every versioned JSON header (`versioned`, also used by batch's cases file).
No pickle: a file from a stranger can only be data. A run file is read within
bounds (`tensorfile`: its layout checked against its size before any tensor
is read, large ones mapped) and checked against the invariants of a run
(`invariants`).

May import: numpy, safetensors, `tealeaves_widgets.errors` and `core`.
Never torch, plotly or widgets. Registers `Run.save` and `RunSet.save` with
`core.seam`; `ScenarioResult.save` too.
"""

from . import rundir, runfile, scenario

__all__ = ["rundir", "runfile", "scenario"]
