"""The memory estimate, the refusal before loading, big-model placement and dtypes."""

from __future__ import annotations

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.models import memory
from tests.helpers.tiny_models import make_tiny_config


def test_refusal_lists_options_that_fit():
    sizes = memory.model_sizes(make_tiny_config("llama"))
    need = memory.estimate_memory(sizes, n_tokens=20000, n_queries=1, dtype="float32")
    bf16 = memory.estimate_memory(sizes, n_tokens=20000, n_queries=1, dtype="bfloat16")
    budget = memory.Budget({"cpu": (need.total + bf16.total) // 2})
    check = memory.check_fit(
        sizes, [100, 5000, 20000], budget, dtype="float32", n_queries=1, device_map="auto"
    )
    assert not check.fits
    assert any(option.startswith("--dtype bfloat16") for option in check.options)
    [max_tokens] = [o for o in check.options if o.startswith("--max-tokens")]
    limit = int(max_tokens.split()[1])
    assert 5000 <= limit < 20000 and "skips the 1 of 3 cases" in max_tokens
    assert memory.estimate_memory(sizes, n_tokens=limit, dtype="float32").total <= budget.total
    message = str(memory.refuse(check))
    assert "would run out of memory" in message and "--skip-memory-check" in message


def test_parse_max_memory():
    assert memory.parse_max_memory("0=20GiB, cpu=60GiB") == {0: "20GiB", "cpu": "60GiB"}
    with pytest.raises(tw.TealeavesError, match="DEVICE=SIZE"):
        memory.parse_max_memory("20GiB")


def test_the_estimate_takes_the_larger_of_the_pass_and_the_save_and_reopen():
    sizes = memory.model_sizes(make_tiny_config("llama"))
    rows = sizes.n_layers * sizes.n_heads * 64 * 8000 * 4  # one float32 copy of the rows
    est = memory.estimate_memory(sizes, n_tokens=8000, n_queries=64, dtype="float32")
    assert est.attention_rows == memory.ROW_COPIES * rows
    # the Run's rows and their mean over heads, and three more copies while saved and reopened
    assert est.saving == int((1 + memory.SAVED_ROW_COPIES) * rows * (1 + 1 / sizes.n_heads))
    assert est.forward == est.activations + est.attention_rows + est.lens
    assert est.capture == max(est.forward, est.saving) + est.runtime
    assert est.total == est.weights + est.capture
    assert "save and reopen" in est.describe()
    short = memory.estimate_memory(sizes, n_tokens=100, n_queries=1, dtype="float32")
    assert short.capture == short.forward + short.runtime  # few rows: the pass is the peak
