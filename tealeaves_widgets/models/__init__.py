"""Models: loading any Hugging Face causal LM (or the embedded default), the
architecture table, the captured forward pass, the logit lens, the memory
estimate, the kept KV cache that reads a query position after the pass with
one decode step, and `Model`, which turns a case and its regions into a `Run`.

Torch and transformers live here and only here. May import: torch,
transformers, accelerate, `tealeaves_widgets.errors`, `core` and `prompt`.
Never `io`, `present`, `widgets` or `batch`: what a model shows (its live
explorer) goes through `core.seam`. Importing this package does not import
torch; its modules do.
"""
