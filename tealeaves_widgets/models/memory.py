"""How much memory a capture needs: before the model is loaded (the command
line's check) and, for a loaded model, before each forward pass (`Model.capture`).

    need = weights at the chosen dtype
         + a fixed runtime allowance
         + the larger of two phases:
             the forward pass: activations for the longest case (SDPA path)
                               + the attention rows kept for the queries (float32)
                               + the logit lens (float32, in chunks)
             then, the run saved and reopened: its rows (and their mean over
                               heads) four times over

Per token of the longest case, a decoder layer holds at its peak about three
(token, intermediate) MLP tensors, three (token, hidden) residual tensors and
two (token, (heads + 2 kv heads) x head_dim) q/k/v tensors at the model's
dtype (twice that on CPU, where the allocator keeps freed blocks); SDPA's
fused kernels never build a (token x token) matrix. A model whose attention
needs the eager math (softcapping, sinks) adds (heads x 512 x token) weights
per chunk. The rows are (layer, head, query, token) float32, held about three
times over while they become numpy and a `Run`; while that Run is saved and
reopened beside it they exist about three more times (the file's bytes, the
bytes read back, the reopened arrays). The lens computes at most
`LENS_ELEMENTS_PER_CHUNK` float32 logits at once, a few such tensors alive
together. `benchmarks/memory_estimate.py` compares the estimate with the
measured peak.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError, InsufficientMemoryError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes per weight of the dtypes the command line offers."""

MLP_TENSORS = 3
"""(token, intermediate) tensors alive at a decoder layer's peak (gate, up, product)."""
HIDDEN_TENSORS = 3
"""(token, hidden) tensors alive at that peak (residual, normed input, block output)."""
QKV_TENSORS = 2
"""Copies of q/k/v alive at once (projection and rotary output)."""
ROW_COPIES = 3
"""The float32 rows exist about three times at the end: per layer, stacked, in the Run."""
SAVED_ROW_COPIES = 3
"""Further copies of the Run's rows while it is saved and then reopened beside
it: the file's bytes, the bytes read back and the reopened arrays (with the
digest's transient bytes). On the embedded model with 64 queries at 8183
tokens (0.53 GiB of rows) that phase peaked 0.76 GiB above the forward pass's
peak, and 0.26 GiB above an estimate without it (benchmarks/memory_estimate.py
--tokens 8180 --queries 64)."""
LENS_TENSORS = 3
"""Chunk-sized float32 tensors the lens holds at once (log-probs with the logits
or the probabilities, and one for the allocator), plus a byte per logit and
tracked token for the rank masks."""
EAGER_CHUNK = 512
"""Query rows per block where the eager math runs (capture.EAGER_QUERY_CHUNK)."""
CPU_ALLOCATOR_SLACK = 2.0
"""On CPU, glibc's arenas keep freed activation blocks for reuse, so the peak
resident size exceeds the tensors alive at once: measured on SmolLM2 at 4096
tokens, 1.6x (one thread) to 2.3x (two threads). GPU's caching allocator
reuses blocks in place; no factor there."""
RUNTIME_CPU = 64 * 2**20
"""Allocator, thread pools and kernel workspaces of the first forward pass on CPU."""
RUNTIME_CUDA = 640 * 2**20
"""CUDA context, cuBLAS workspace and caching-allocator slack per GPU."""


@dataclass(frozen=True)
class ModelSizes:
    """The sizes an estimate needs, read from a config (no weights loaded)."""

    n_params: int
    """Parameters, tied ones counted once."""
    n_layers: int
    hidden: int
    intermediate: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    eager_attention: bool
    """True when the capture runs the eager math for the output (softcap or sinks)."""
    default_dtype: str
    """The dtype the checkpoint was saved in (used when none is chosen)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a capture needs, by part. `total` is what must fit."""

    weights: int
    """Parameters x bytes of the dtype."""
    activations: int
    """One decoder layer's peak working set for the longest case (SDPA path)."""
    attention_rows: int
    """(layer, head, query, token) float32 rows of the longest case, and their copies."""
    saving: int
    """The rows while the run is saved and reopened: the Run's own and
    `SAVED_ROW_COPIES` more. That comes after the forward pass (its
    activations freed), so the larger of the two phases is what must fit."""
    lens: int
    """Float32 logits of the lens, chunked."""
    runtime: int
    """Fixed allowance: allocator, thread pools, CUDA context."""
    n_tokens: int
    """Tokens of the longest case."""
    dtype: str

    @property
    def forward(self) -> int:
        """The forward pass's phase: activations, rows and lens together."""
        return self.activations + self.attention_rows + self.lens

    @property
    def capture(self) -> int:
        """Everything but the weights: the capture's own cost (the larger of the
        forward pass and the save and reopen), plus the runtime allowance."""
        return max(self.forward, self.saving) + self.runtime

    @property
    def total(self) -> int:
        return self.weights + self.capture

    def describe(self) -> str:
        parts = [("weights", self.weights), *self._capture_parts(), ("runtime", self.runtime)]
        detail = ", ".join(f"{name} {gib(value)}" for name, value in parts)
        return f"{gib(self.total)} at {self.dtype}, {self.n_tokens} tokens ({detail})"

    def describe_capture(self) -> str:
        """The capture's own parts, for a model already loaded."""
        return ", ".join(f"{name} {gib(value)}" for name, value in self._capture_parts())

    def _capture_parts(self) -> list[tuple[str, int]]:
        return [
            ("activations", self.activations),
            ("attention rows", self.attention_rows),
            ("lens", self.lens),
            ("or, later, save and reopen", self.saving),
        ]


def gib(n_bytes: float) -> str:
    """Bytes as GiB with two decimals (MiB below 1 GiB)."""
    if n_bytes < 2**30:
        return f"{n_bytes / 2**20:.0f} MiB"
    return f"{n_bytes / 2**30:.2f} GiB"


def model_sizes(config: Any, n_params: int | None = None) -> ModelSizes:
    """Sizes from a transformers config; the parameter count (unless given, as
    for a loaded model) from an empty (meta-device) model, so nothing is
    downloaded or allocated."""
    import torch

    from .architectures import architecture_for, model_shape

    arch = architecture_for(config)
    if n_params is None:
        from accelerate import init_empty_weights
        from transformers import AutoModelForCausalLM

        with init_empty_weights():
            empty = AutoModelForCausalLM.from_config(config)
        empty.tie_weights()  # an empty model is built untied; count shared weights once
        n_params = sum(p.numel() for p in empty.parameters())
    n_layers = int(config.num_hidden_layers)
    shape = model_shape(arch, config, n_layers)
    hidden = int(config.hidden_size)
    head_dim = getattr(config, "head_dim", None) or hidden // shape.n_heads
    intermediate = (
        getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    )
    active_experts = int(getattr(config, "num_experts_per_tok", 1) or 1)
    softcap = getattr(config, arch.attention_softcap, None) if arch.attention_softcap else None
    dtype = getattr(config, "dtype", None) or "float32"
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    return ModelSizes(
        n_params=int(n_params),
        n_layers=n_layers,
        hidden=hidden,
        intermediate=int(intermediate) * active_experts,
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        head_dim=int(head_dim),
        vocab=int(config.vocab_size),
        eager_attention=bool(softcap) or arch.attention_sinks,
        default_dtype=str(dtype) if str(dtype) in DTYPE_BYTES else "float32",
    )


def estimate_memory(
    sizes: ModelSizes,
    *,
    n_tokens: int,
    n_queries: int = 1,
    n_tracked: int = 0,
    dtype: str | None = None,
    on_gpu: bool = False,
) -> MemoryEstimate:
    """What capturing one case of `n_tokens` tokens with `n_queries` queries needs."""
    from .lens import chunk_layers

    dtype = dtype or sizes.default_dtype
    if dtype not in DTYPE_BYTES:
        raise ArgumentError(f"dtype must be one of {list(DTYPE_BYTES)}, got {dtype!r}.")
    b = DTYPE_BYTES[dtype]
    s, t, q = sizes, int(n_tokens), max(1, int(n_queries))
    qkv = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim
    per_token = MLP_TENSORS * s.intermediate + HIDDEN_TENSORS * s.hidden + QKV_TENSORS * qkv
    activations = t * per_token * b
    if s.eager_attention:
        activations += 3 * s.n_heads * min(t, EAGER_CHUNK) * t * b
    if not on_gpu:
        activations = int(activations * CPU_ALLOCATOR_SLACK)
    one_copy = s.n_layers * s.n_heads * q * t * 4
    chunk = chunk_layers(s.n_layers, q, s.vocab) * q * s.vocab
    lens = LENS_TENSORS * chunk * 4 + max(0, n_tracked) * chunk  # + boolean rank masks
    return MemoryEstimate(
        weights=s.n_params * b,
        activations=activations,
        attention_rows=ROW_COPIES * one_copy,
        # the Run holds the rows and their mean over heads; both are copied
        saving=int((1 + SAVED_ROW_COPIES) * one_copy * (1 + 1 / s.n_heads)),
        lens=lens,
        runtime=RUNTIME_CUDA if on_gpu else RUNTIME_CPU,
        n_tokens=t,
        dtype=dtype,
    )


def kv_cache_bytes(sizes: ModelSizes, n_tokens: int, dtype: str | None = None) -> int:
    """Keys and values of every layer for `n_tokens` tokens, at the model's
    dtype: what a capture that keeps its KV cache (`keep_cache=True`, for
    queries read later) holds after the pass, 2 x layers x tokens x kv heads x
    head dim x bytes."""
    dtype = dtype or sizes.default_dtype
    b = DTYPE_BYTES.get(dtype, 4)
    return 2 * sizes.n_layers * int(n_tokens) * sizes.n_kv_heads * sizes.head_dim * b


# ---------------------------------------------------------------- budget


@dataclass(frozen=True)
class Budget:
    """Memory the capture may use: per device, and whether weights may go to disk."""

    devices: dict[str, int]
    """Device name ("cpu", "cuda:0", ...) -> bytes available to the capture."""
    offload: bool = False
    """True when weights that do not fit may be offloaded to disk (offload_folder)."""
    on_gpu: bool = False

    @property
    def total(self) -> int:
        return sum(self.devices.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gib(value)}" for name, value in self.devices.items())
        return parts + (" (+ disk offload for weights)" if self.offload else "")


def parse_max_memory(text: str | Mapping | None) -> dict | None:
    """'0=20GiB,cpu=60GiB' -> {0: '20GiB', 'cpu': '60GiB'} (accelerate's max_memory)."""
    if text is None or isinstance(text, Mapping):
        return dict(text) if text is not None else None
    out: dict[int | str, int | str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key or not value:
            raise ArgumentError(
                f"--max-memory expects DEVICE=SIZE pairs separated by commas, e.g. "
                f"'0=20GiB,cpu=60GiB'; got {text!r} (the part {part!r})."
            )
        if not (key.isdigit() or key in MAX_MEMORY_DEVICES):
            raise ArgumentError(
                f"--max-memory names the device {key!r} in {part!r}; a device is a GPU number "
                f"or one of {list(MAX_MEMORY_DEVICES)}, e.g. '0=20GiB,cpu=60GiB'."
            )
        size: int | str = int(value) if value.isdigit() else value  # bare digits: bytes
        try:
            _size(size)
        except (ValueError, OverflowError):
            raise ArgumentError(
                f"--max-memory gives {key} the size {value!r}, which is not a size; write a "
                "number with a unit (GiB, MiB, GB, MB), e.g. '0=20GiB,cpu=60GiB'."
            ) from None
        out[int(key) if key.isdigit() else key] = size
    if not out:
        raise ArgumentError(
            f"--max-memory {text!r} names no device; write DEVICE=SIZE pairs, e.g. "
            "'0=20GiB,cpu=60GiB'."
        )
    return out


MAX_MEMORY_DEVICES = ("cpu", "disk", "mps")
"""Devices accelerate's max_memory names besides GPU numbers."""


def _size(value: int | str) -> int:
    from accelerate.utils import convert_file_size_to_int

    return int(value) if isinstance(value, int) else int(convert_file_size_to_int(value))


def available_cpu() -> int:
    """MemAvailable of /proc/meminfo (Linux), else psutil's, else 0 (unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 0


def available_gpus() -> dict[str, int]:
    """Free bytes of each visible CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        f"cuda:{i}": int(torch.cuda.mem_get_info(i)[0]) for i in range(torch.cuda.device_count())
    }


def memory_budget(
    device_map: Any, max_memory: Mapping | None = None, offload_folder: str | None = None
) -> Budget:
    """What the capture may use under `device_map` (None: one device, the CPU
    unless a GPU is named) and accelerate's `max_memory`."""
    gpus = available_gpus()
    if max_memory:
        devices = {
            (f"cuda:{key}" if isinstance(key, int) else str(key)): _size(value)
            for key, value in max_memory.items()
            if key != "disk"
        }
        return Budget(devices, offload_folder is not None, any(d != "cpu" for d in devices))
    if device_map == "auto" or device_map in ("balanced", "balanced_low_0", "sequential"):
        devices = {**gpus, "cpu": available_cpu()}
        return Budget(devices, offload_folder is not None, bool(gpus))
    target = _single_device(device_map)
    if target.startswith("cuda"):
        name = target if ":" in target else "cuda:0"
        return Budget({name: gpus.get(name, 0)}, offload_folder is not None, True)
    return Budget({"cpu": available_cpu()}, offload_folder is not None, False)


def _single_device(device_map: Any) -> str:
    if device_map is None:
        return "cpu"
    if isinstance(device_map, int):
        return f"cuda:{device_map}"
    if isinstance(device_map, Mapping):
        values = {str(v) if not isinstance(v, int) else f"cuda:{v}" for v in device_map.values()}
        gpus = sorted(v for v in values if v.startswith("cuda"))
        return gpus[0] if gpus else "cpu"
    return str(device_map)


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class FitCheck:
    """The estimate against the budget, and what would fit instead."""

    estimate: MemoryEstimate
    budget: Budget
    fits: bool
    options: tuple[str, ...]
    """Command-line changes that would fit, when it does not."""

    def message(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"memory estimate: {self.estimate.describe()}; available: {self.budget.describe()}; "
            f"it {verdict}."
        )


def check_fit(
    sizes: ModelSizes,
    lengths: Sequence[int],
    budget: Budget,
    *,
    dtype: str | None,
    n_queries: int,
    n_tracked: int = 0,
    device_map: Any = None,
) -> FitCheck:
    """Whether the longest case fits the budget; if not, which options would."""
    dtype = dtype or sizes.default_dtype
    if not lengths:
        raise ArgumentError("No case to estimate the memory of: the cases list is empty.")

    def need(n_tokens: int, dtype_: str, on_gpu: bool = budget.on_gpu) -> MemoryEstimate:
        return estimate_memory(
            sizes,
            n_tokens=n_tokens,
            n_queries=n_queries,
            n_tracked=n_tracked,
            dtype=dtype_,
            on_gpu=on_gpu,
        )

    def fits(estimate: MemoryEstimate, plan: Budget) -> bool:
        if plan.total <= 0:
            return True  # unknown: do not refuse
        weights = 0 if plan.offload else estimate.weights
        return weights + estimate.capture <= plan.total

    longest = max(lengths)
    estimate = need(longest, dtype)
    if fits(estimate, budget):
        return FitCheck(estimate, budget, True, ())
    options = []
    for smaller in ("bfloat16", "float16"):
        if DTYPE_BYTES[smaller] < DTYPE_BYTES[dtype] and fits(need(longest, smaller), budget):
            options.append(f"--dtype {smaller} (needs {gib(need(longest, smaller).total)})")
            break
    if device_map != "auto":
        spread = Budget({**available_gpus(), "cpu": available_cpu()}, budget.offload, True)
        if spread.total > budget.total and fits(need(longest, dtype, True), spread):
            options.append(f"--device-map auto (spreads the weights over {spread.describe()})")
    if not budget.offload:
        options.append(
            "--offload-folder DIR with --device-map auto (weights that do not fit go to disk; slow)"
        )
    max_tokens = largest_fitting(lambda t: fits(need(t, dtype), budget), longest)
    if max_tokens:
        skipped = sum(1 for n in lengths if n > max_tokens)
        options.append(
            f"--max-tokens {max_tokens} (skips the {skipped} of {len(lengths)} cases that are "
            "longer)"
        )
    return FitCheck(estimate, budget, False, tuple(options))


def largest_fitting(ok: Callable[[int], bool], upper: int) -> int:
    """The largest token count in [1, upper) for which `ok` holds; 0 if none."""
    low, high = 0, upper
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            low = middle
        else:
            high = middle
    return low


def refuse(check: FitCheck) -> InsufficientMemoryError:
    """The error raised when the capture would not fit."""
    options = "".join(f"\n  - {option}" for option in check.options) or "\n  - (none found)"
    return InsufficientMemoryError(
        f"The capture would run out of memory: it needs about {check.estimate.describe()}, "
        f"but only {check.budget.describe()} is available. Options that would fit:{options}\n"
        "Or pass --skip-memory-check to try anyway (the estimate is described in the README)."
    )


# ---------------------------------------------------------------- a loaded model


@dataclass(frozen=True)
class LoadedFit:
    """One capture on a model already loaded: what it needs on each device
    (the weights are there already) against what is free there now."""

    estimate: MemoryEstimate
    need: dict[str, int]
    """Device -> bytes the capture adds there: activations, rows and lens where
    the layers run, the rows' numpy copies and the save/reopen copies on "cpu"."""
    available: dict[str, int]
    """Device -> bytes free now (0: unknown, never refused)."""

    @property
    def fits(self) -> bool:
        return all(
            self.available[device] <= 0 or need <= self.available[device]
            for device, need in self.need.items()
        )

    def describe(self) -> str:
        return "; ".join(
            f"{device}: needs {gib(need)}, "
            + (
                f"{gib(self.available[device])} free"
                if self.available[device] > 0
                else "free unknown"
            )
            for device, need in self.need.items()
        )


def loaded_fit(
    sizes: ModelSizes,
    layer_devices: Sequence[str],
    lens_device: str,
    *,
    n_tokens: int,
    n_queries: int,
    n_tracked: int = 0,
    dtype: str | None = None,
    available: Callable[[str], int] | None = None,
    keep_cache: bool = False,
) -> LoadedFit:
    """What capturing one case of `n_tokens` tokens needs on a loaded model whose
    layers run on `layer_devices` (one per layer: "cpu", "cuda:0", ...) and whose
    lens runs on `lens_device`; with `keep_cache`, each layer's keys and values
    too (`kv_cache_bytes`), where the layer runs. The runtime allowance is left
    out: the process, its allocator and any CUDA context exist already."""
    available = available or available_on

    def estimate(on_gpu: bool) -> MemoryEstimate:
        return estimate_memory(
            sizes,
            n_tokens=n_tokens,
            n_queries=n_queries,
            n_tracked=n_tracked,
            dtype=dtype,
            on_gpu=on_gpu,
        )

    on_gpu, on_cpu = estimate(True), estimate(False)
    one_copy = on_cpu.attention_rows // ROW_COPIES
    need: dict[str, int] = {}

    def add(device: str, n_bytes: float) -> None:
        need[device] = need.get(device, 0) + int(n_bytes)

    for device in dict.fromkeys(layer_devices):  # each device runs one layer at a time
        add(device, (on_cpu if device == "cpu" else on_gpu).activations)
    for device in layer_devices:  # each layer's rows stay on its device until the end
        add(device, one_copy / len(layer_devices))
    kept_on_cpu = 0.0
    if keep_cache:  # and its keys and values, which stay after the pass
        kv = kv_cache_bytes(sizes, n_tokens, dtype) / len(layer_devices)
        for device in layer_devices:
            add(device, kv)
        kept_on_cpu = kv * sum(device == "cpu" for device in layer_devices)
    add(lens_device, on_cpu.lens)
    add("cpu", on_cpu.attention_rows - one_copy)  # stacked as numpy, cut into the Run
    # later: the Run saved and reopened (beside the kept cache)
    need["cpu"] = max(need["cpu"], int(on_cpu.saving + kept_on_cpu))
    shown = on_gpu if any(d != "cpu" for d in need) else on_cpu
    return LoadedFit(shown, need, {device: available(device) for device in need})


def available_on(device: str) -> int:
    """Bytes free on `device` now: MemAvailable for "cpu"; for a GPU, its free
    memory plus what torch's caching allocator holds unused. 0 if unknown."""
    if device == "cpu":
        return available_cpu()
    if not device.startswith("cuda"):
        return 0
    import torch

    index = int(device.partition(":")[2] or 0)
    free = int(torch.cuda.mem_get_info(index)[0])
    return free + int(torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index))
