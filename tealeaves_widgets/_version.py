"""The package version (stdlib only: every layer may import it)."""

__version__ = "0.1.0"
