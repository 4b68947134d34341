"""Jobs: TeaLeaves' inputs -> a cases file (`prep`) -> a run directory
(`capture`, resumable, sharded over processes) -> tables and reports; the
command line (`cli`) and the example notebooks it runs (`notebooks`).

The top of the pipeline: may import every other layer. Nothing imports it.
"""

from .capture import CaptureOptions, CaptureSummary, capture_cases, merge_index, process_state
from .cases import BatchCase, CasesFile, Problem, read_cases, validate_cases
from .prep import INPUT_NAMES, PrepInputs, prep

__all__ = [
    "INPUT_NAMES",
    "BatchCase",
    "CaptureOptions",
    "CaptureSummary",
    "CasesFile",
    "PrepInputs",
    "Problem",
    "capture_cases",
    "merge_index",
    "prep",
    "process_state",
    "read_cases",
    "validate_cases",
]
