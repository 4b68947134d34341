"""The memory estimate, the refusal before loading, big-model placement and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.__main__ import main
from tealeaves_widgets.models import memory
from tests.helpers.batch_fixtures import write_tiny_model
from tests.helpers.tiny_models import make_tiny_config

CASE = tw.Case(
    system="You are Pip.\n\n## Rules\n- Be brief.\n\n## Facts\n- Our data centres are in Paris.",
    user="Where are your data centres?",
)
REGIONS = {
    "system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]},
    "query_positions": ["final", "last_token"],
    "tracked_tokens": [" Paris"],
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_estimate_parts():
    from tests.helpers.tiny_models import make_tiny_model

    sizes = memory.model_sizes(make_tiny_config("llama"))
    assert sizes.n_params == sum(p.numel() for p in make_tiny_model("llama").parameters())
    fp32 = memory.estimate_memory(sizes, n_tokens=1000, n_queries=2, dtype="float32", on_gpu=True)
    bf16 = memory.estimate_memory(sizes, n_tokens=1000, n_queries=2, dtype="bfloat16", on_gpu=True)
    assert fp32.weights == 2 * bf16.weights == sizes.n_params * 4
    assert fp32.activations == 2 * bf16.activations
    assert fp32.attention_rows == bf16.attention_rows  # rows are float32 whatever the dtype
    assert fp32.attention_rows == 3 * sizes.n_layers * sizes.n_heads * 2 * 1000 * 4
    longer = memory.estimate_memory(sizes, n_tokens=2000, n_queries=2, dtype="float32", on_gpu=True)
    assert longer.activations == 2 * fp32.activations and longer.weights == fp32.weights
    on_cpu = memory.estimate_memory(sizes, n_tokens=1000, n_queries=2, dtype="float32")
    assert on_cpu.activations == memory.CPU_ALLOCATOR_SLACK * fp32.activations


def test_parameter_count_counts_tied_weights_once(smol_model):
    sizes = memory.model_sizes(smol_model.hf_model.config)
    assert sizes.n_params == sum(p.numel() for p in smol_model.hf_model.parameters())
    assert sizes.n_params == 134_515_008


def test_capture_command_refuses_before_loading(tmp_path, tiny_dir, smol_tokenizer, capsys):
    from tealeaves_widgets import batch
    from tests.helpers.batch_fixtures import write_inputs

    inputs = write_inputs(tmp_path / "inputs")
    cases = batch.prep(batch.PrepInputs.in_folder(inputs), smol_tokenizer).save(tmp_path / "c.json")
    args = ["capture", str(cases), "--out", str(tmp_path / "runs"), "--model", str(tiny_dir)]
    status = main([*args, "--device-map", "auto", "--max-memory", "cpu=20MB", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1
    assert "would run out of memory" in err and "cpu 19 MiB" in err
    assert "--offload-folder" in err
    assert not list((tmp_path / "runs").glob("*.tlrun"))


LAYERS_ON_DISK = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}


ALL_ON_DISK = {"": "disk"}


@pytest.mark.parametrize("device_map", [LAYERS_ON_DISK, ALL_ON_DISK], ids=["layers", "all"])
def test_layers_split_between_cpu_and_disk_give_the_same_run(tiny_dir, tmp_path, device_map):
    whole = tw.load_model(str(tiny_dir)).capture(CASE, REGIONS)
    split = tw.load_model(str(tiny_dir), device_map=device_map, offload_folder=tmp_path / "off")
    assert "disk" in split.hf_model.hf_device_map.values()
    run = split.capture(CASE, REGIONS)
    np.testing.assert_allclose(run.attention_heads, whole.attention_heads, atol=1e-6)
    np.testing.assert_allclose(run.lens.top_probs, whole.lens.top_probs, atol=1e-6)
    np.testing.assert_array_equal(run.lens.tracked_ranks, whole.lens.tracked_ranks)


def test_max_memory_needs_a_device_map(tiny_dir):
    with pytest.raises(tw.TealeavesError, match='device_map="auto"'):
        tw.load_model(str(tiny_dir), max_memory={"cpu": "1GB"})


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_weights_keep_float32_rows(tiny_dir, dtype):
    half = tw.load_model(str(tiny_dir), dtype=dtype)
    assert half.dtype == getattr(torch, dtype)
    run = half.capture(CASE, REGIONS)
    assert run.model_info["dtype"] == dtype
    assert run.attention_heads.dtype == np.float32 and run.lens.top_probs.dtype == np.float32
    # softmax in float32: each row sums to 1 far below half precision's 1e-3 steps
    np.testing.assert_allclose(run.attention_heads.sum(-1), 1.0, atol=1e-6)
    full = tw.load_model(str(tiny_dir)).capture(CASE, REGIONS)
    np.testing.assert_allclose(run.attention_heads, full.attention_heads, atol=0.05)
    with pytest.raises(tw.TealeavesError, match="not one of"):
        tw.load_model(str(tiny_dir), dtype="int8")
