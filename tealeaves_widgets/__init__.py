"""tealeaves-widgets: see how a language model reads a prompt, inside Jupyter."""

from .errors import TealeavesError
from .loading import load_model
from .run import Lens, RegionInfo, Run

__all__ = ["Lens", "RegionInfo", "Run", "TealeavesError", "load_model"]
