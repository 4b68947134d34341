"""`Model.ablate` against independent computations on tiny random models:
a hand-written llama forward (tests/helpers/handwritten.py) with the same
intervention applied to its own tensors, a `v_proj` output hook, the
model's weights edited, and identities (mean ablation with the head's own
mean). GQA is included: the tiny llama and qwen2 have 4 query heads on 2 KV
heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tests.helpers.handwritten import llama_logits
from tests.helpers.tiny_models import make_tiny_model

TOL = 1e-5
CASE = tw.Case(
    system="You are Pip, the assistant of Acme.\n## Rules\n- Answer briefly.\n- Be kind.",
    user="Where are the data centres? Name the cities.",
)
REGIONS = {
    "system_prompt": {"regions": [{"name": "rules", "start_marker": "## Rules"}]},
    "query_positions": ["final", "last_token"],
}


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request, smol_tokenizer):
    return tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)


def logits_at(model, result: tw.Ablation, name: str) -> np.ndarray:
    return result.logits[result.names.index(name)]


def handwritten(model, result: tw.Ablation, **interventions) -> np.ndarray:
    out = llama_logits(model.hf_model, list(result.base.token_ids), **interventions)
    return out[result.position].numpy()


def test_the_baseline_is_the_hand_written_forward(model):
    result = model.ablate(CASE, tw.HeadAblation(0, 0), REGIONS)
    np.testing.assert_allclose(result.base_logits, handwritten(model, result), atol=TOL, rtol=0)
    # and the model's own output
    with torch.no_grad():
        own = model.hf_model(input_ids=torch.as_tensor(result.base.token_ids)[None]).logits
    np.testing.assert_allclose(result.base_logits, own[0, -1].numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("positions", ["t", "all", [3, 7, -1]])
def test_head_zero_ablation_is_zeroing_its_output_projection_columns(model, positions):
    ablations = {
        "h": tw.HeadAblation(1, 3, positions),
        "h2": [tw.HeadAblation(2, 0, positions), tw.HeadAblation(2, 1, positions)],
    }
    result = model.ablate(CASE, ablations, REGIONS)
    n, t = result.base.n_tokens, result.position
    where = [t] if positions == "t" else list(range(n)) if positions == "all" else [3, 7, n - 1]
    expected = handwritten(model, result, zero_heads={1: [(3, where)]})
    np.testing.assert_allclose(logits_at(model, result, "h"), expected, atol=TOL, rtol=0)
    both = handwritten(model, result, zero_heads={2: [(0, where), (1, where)]})
    np.testing.assert_allclose(logits_at(model, result, "h2"), both, atol=TOL, rtol=0)
    # a real change, not the baseline
    assert np.abs(logits_at(model, result, "h") - result.base_logits).max() > 1e-3


def test_all_heads_value_ablation_is_a_v_proj_output_hook(model):
    result = model.ablate(
        CASE,
        {"one": tw.ValueAblation(1, "t-1..t-2"), "every": tw.ValueAblation("all", "before_t")},
        REGIONS,
    )
    t = result.position
    ids = torch.as_tensor(result.base.token_ids)[None]

    def hooked(layers, positions):
        handles = []
        for layer in layers:
            v_proj = model.hf_model.model.layers[layer].self_attn.v_proj

            def zero(_module, _args, output):
                output = output.clone()
                output[:, positions] = 0
                return output

            handles.append(v_proj.register_forward_hook(zero))
        try:
            with torch.no_grad():
                return model.hf_model(input_ids=ids).logits[0, t].numpy()
        finally:
            for handle in handles:
                handle.remove()

    np.testing.assert_allclose(
        logits_at(model, result, "one"), hooked([1], [t - 2, t - 1]), atol=TOL, rtol=0
    )
    every = hooked(range(model.shape.n_layers), list(range(t)))
    np.testing.assert_allclose(logits_at(model, result, "every"), every, atol=TOL, rtol=0)
    assert np.abs(logits_at(model, result, "every") - result.base_logits).max() > 1e-2


def test_per_head_value_ablation_is_eager_attention_on_expanded_values(model):
    # heads 0 and 1 share KV head 0: ablating only head 1's copy must leave head 0 reading it
    result = model.ablate(
        CASE,
        {
            "h1": tw.ValueAblation(2, "t-1", heads=[1]),
            "h03": tw.ValueAblation("all", [2, 5, 9], heads=[0, 3]),
        },
        REGIONS,
    )
    t = result.position
    expected = handwritten(model, result, zero_values={2: [([1], [t - 1])]})
    np.testing.assert_allclose(logits_at(model, result, "h1"), expected, atol=TOL, rtol=0)
    layers = {layer: [([0, 3], [2, 5, 9])] for layer in range(model.shape.n_layers)}
    np.testing.assert_allclose(
        logits_at(model, result, "h03"),
        handwritten(model, result, zero_values=layers),
        atol=TOL,
        rtol=0,
    )
    # not the whole KV group: zeroing heads 0 and 1 (the group) differs from head 1 alone
    group = handwritten(model, result, zero_values={2: [([0, 1], [t - 1])]})
    assert np.abs(group - expected).max() > 1e-4


def test_mask_knockout_is_attention_with_those_keys_masked(model):
    result = model.ablate(
        CASE,
        {"mask": tw.RegionKnockout("rules", "mask"), "values": tw.RegionKnockout("rules")},
        REGIONS,
    )
    rules = result.base.regions["rules"].token_indices.tolist()
    masked = handwritten(model, result, hidden_keys=rules)
    np.testing.assert_allclose(logits_at(model, result, "mask"), masked, atol=TOL, rtol=0)
    everywhere = {layer: [(None, rules)] for layer in range(model.shape.n_layers)}
    np.testing.assert_allclose(
        logits_at(model, result, "values"),
        handwritten(model, result, zero_values=everywhere),
        atol=TOL,
        rtol=0,
    )
    # the capture saw the masked forward: no query outside the region attends to it
    run = result.runs["mask"]
    outside = [q for q, p in run.queries.items() if p not in rules]
    assert outside == ["final"]  # a condition's run is read at t
    for q in outside:
        assert run.attention_heads[:, :, run.query_index(q), rules].max() == 0.0
        np.testing.assert_allclose(
            run.attention_heads[:, :, run.query_index(q)].sum(-1), 1.0, atol=1e-5
        )
    base_mass = result.base.attention_heads[:, :, result.base.query_index("final"), rules].sum()
    assert base_mass > 0.01  # the region did draw attention before


def test_a_masked_region_holding_the_first_token_leaves_no_row_empty(model):
    """The template holds token 0, which sees only itself: it keeps its own
    key, so its row is not empty (no NaN), as in the hand-written forward."""
    result = model.ablate(CASE, tw.RegionKnockout("template", "mask"), REGIONS)
    template = result.base.regions["template"].token_indices.tolist()
    assert 0 in template
    assert np.isfinite(result.logits[0]).all()
    expected = handwritten(model, result, hidden_keys=template)
    np.testing.assert_allclose(result.logits[0], expected, atol=TOL, rtol=0)


def test_mean_ablation_with_the_heads_own_mean_is_the_identity(model):
    rendered = model.render(CASE)
    t = len(rendered.token_ids) - 1
    own = model.head_means([CASE], positions=[t])
    result = model.ablate(CASE, tw.HeadAblation(1, 2, "t", "mean"), REGIONS, reference=own)
    np.testing.assert_allclose(result.logits[0], result.base_logits, atol=TOL, rtol=0)
    # with the mean over every position it is a change, equal to the hand-written replacement
    means = model.head_means([CASE])
    result = model.ablate(CASE, tw.HeadAblation(1, 2, "t", "mean"), REGIONS, reference=means)
    expected = handwritten(
        model, result, replace_heads={1: [(2, [t], torch.as_tensor(means[1, 2]).float())]}
    )
    np.testing.assert_allclose(result.logits[0], expected, atol=TOL, rtol=0)
    assert np.abs(result.logits[0] - result.base_logits).max() > 1e-4
    # the default reference is the prompt itself, every position
    default = model.ablate(CASE, tw.HeadAblation(1, 2, "t", "mean"), REGIONS)
    np.testing.assert_allclose(default.logits[0], result.logits[0], atol=TOL, rtol=0)


def test_the_table_is_the_logit_arithmetic(model):
    result = model.ablate(
        CASE, [tw.HeadAblation(1, 0, "all"), tw.RegionKnockout("rules", "mask")], REGIONS, top_k=5
    )
    table = result.table()
    base = torch.as_tensor(result.base_logits, dtype=torch.float64)
    top = int(base.argmax())
    for i, row in enumerate(table.to_dict("records")):
        cond = torch.as_tensor(result.logits[i], dtype=torch.float64)
        delta = cond - base
        assert row["predicted_id"] == int(cond.argmax())
        assert row["delta_base_top"] == pytest.approx(float(delta[top]), abs=1e-9)
        lp_b, lp_c = torch.log_softmax(base, -1), torch.log_softmax(cond, -1)
        assert row["delta_logprob"] == pytest.approx(float(lp_c[top] - lp_b[top]), abs=1e-9)
        assert row["delta_centered"] == pytest.approx(float(delta[top] - delta.mean()), abs=1e-9)
        kl = torch.nn.functional.kl_div(lp_c, lp_b, log_target=True, reduction="sum")
        assert row["kl"] == pytest.approx(float(kl), abs=1e-9)
        changes = result.changes(i)
        assert changes["rose_id"].tolist() == torch.topk(delta, 5).indices.tolist()
        assert changes["fell_id"].tolist() == torch.topk(-delta, 5).indices.tolist()
        assert changes["rose"].tolist() == [model.tokenizer.decode([j]) for j in changes["rose_id"]]


def test_at_a_token_index_adds_that_query(model):
    result = model.ablate(CASE, tw.HeadAblation(0, 1), REGIONS, at=10)
    assert result.at == "t=10" and result.position == 10
    expected = handwritten(model, result, zero_heads={0: [(1, [10])]})
    np.testing.assert_allclose(result.logits[0], expected, atol=TOL, rtol=0)
    assert list(result.runs[result.names[0]].queries) == ["t=10"]  # a condition's run: t only
    assert "t=10" in result.base.queries and "final" in result.base.queries


def test_gpt2_head_ablation_is_zeroing_its_weight_rows(smol_tokenizer):
    """GPT-2's output projection is a Conv1D (weight: in x out): ablating a head
    everywhere equals zeroing that head's rows of c_proj.weight."""
    hf = make_tiny_model("gpt2")
    model = tw.load_model(hf, tokenizer=smol_tokenizer)
    result = model.ablate(CASE, tw.HeadAblation(1, 2, "all"), REGIONS)
    dim = hf.config.n_embd // hf.config.n_head
    with torch.no_grad():
        proj = hf.transformer.h[1].attn.c_proj
        saved = proj.weight.clone()
        proj.weight[2 * dim : 3 * dim] = 0
        try:
            expected = hf(input_ids=torch.as_tensor(result.base.token_ids)[None]).logits[0, -1]
        finally:
            proj.weight.copy_(saved)
    np.testing.assert_allclose(result.logits[0], expected.numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("model_type", ["gemma2", "gpt_oss", "gpt_neox", "mistral"])
def test_value_ablation_of_every_head_one_by_one_is_all_heads_at_once(model_type, smol_tokenizer):
    """On the eager paths (softcapping, sinks) and other layouts: listing
    every query head takes the expanded-KV path, naming none the shared one;
    both must agree."""
    model = tw.load_model(make_tiny_model(model_type), tokenizer=smol_tokenizer)
    heads = list(range(model.shape.n_heads))
    result = model.ablate(
        CASE,
        {
            "listed": tw.ValueAblation(1, "before_t", heads=heads),
            "all": tw.ValueAblation(1, "before_t"),
        },
        REGIONS,
    )
    np.testing.assert_allclose(result.logits[0], result.logits[1], atol=TOL, rtol=0)
    assert np.abs(result.logits[1] - result.base_logits).max() > 1e-4
    # and the model is left as it was
    again = model.ablate(CASE, tw.HeadAblation(0, 0), REGIONS)
    np.testing.assert_allclose(again.base_logits, result.base_logits, atol=0, rtol=0)


def test_knockout_regions_is_one_mask_knockout_per_region(model):
    result = model.knockout_regions(CASE, REGIONS)
    assert result.names == ["rules"]  # the built-in sections are left out
    assert result.conditions[0].interventions == (tw.RegionKnockout("rules", "mask"),)
    by_hand = model.ablate(CASE, {"rules": tw.RegionKnockout("rules", "mask")}, REGIONS)
    np.testing.assert_allclose(result.logits, by_hand.logits, atol=TOL, rtol=0)
    every = model.knockout_regions(CASE, REGIONS, mode="values", include_builtin=True)
    assert every.names == list(every.base.regions)  # template, system, user too
    assert {c.interventions[0].mode for c in every.conditions} == {"values"}
    named = model.knockout_regions(CASE, REGIONS, names=["user", "rules"])
    assert named.names == ["user", "rules"]
    # the view of a captured ablation: every condition a knockout row, every run embedded
    from tealeaves_widgets.widgets.schema import AblationPayload, check_typeddict

    view = tw.AblationView(every)
    assert check_typeddict(view.ablation, AblationPayload) == []
    assert [c["knockout"] for c in view.ablation["conditions"]] == every.names
    assert view.ablation["runs"] == [True] * len(every.names)
    with pytest.raises(tw.SelectionError, match=r"unknown region\(s\) \['facts'\]; this prompt"):
        model.knockout_regions(CASE, REGIONS, names=["facts"])
    with pytest.raises(tw.SelectionError, match="no regions of its own to knock out"):
        model.knockout_regions(CASE, {"query_positions": ["final"]})
    with pytest.raises(tw.ArgumentError, match="mode must be one of"):
        model.knockout_regions(CASE, REGIONS, mode="zero")


def test_bad_conditions_name_the_value_and_the_range(model):
    cases = [
        (
            tw.HeadAblation(9, 0),
            tw.SelectionError,
            "layer=9 is out of range; the model has layers 0..2",
        ),
        (
            tw.HeadAblation(0, 4),
            tw.SelectionError,
            "head=4 is out of range; the model has heads 0..3",
        ),
        (tw.ValueAblation(0, "t-1", heads=[7]), tw.SelectionError, "head=7"),
        (tw.RegionKnockout("facts"), tw.SelectionError, "unknown region 'facts'"),
        (tw.ValueAblation(0, [500]), tw.SelectionError, "outside the prompt of"),
        (tw.ValueAblation(0, "t-99"), tw.SelectionError, "reaches before the first token"),
    ]
    for condition, error, message in cases:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            model.ablate(
                CASE, condition, REGIONS, at="last_token" if "t-99" in str(condition) else "final"
            )
    with pytest.raises(tw.SelectionError, match="at='answer' is not a query"):
        model.ablate(CASE, tw.HeadAblation(0, 0), REGIONS, at="answer")
    with pytest.raises(tw.SelectionError, match="at=999 lies outside the prompt"):
        model.ablate(CASE, tw.HeadAblation(0, 0), REGIONS, at=999)
    with pytest.raises(tw.ArgumentError, match="reference means must have shape"):
        model.ablate(
            CASE, tw.HeadAblation(0, 0, mode="mean"), REGIONS, reference=np.zeros((2, 2, 2))
        )


TEXTS = [
    "The committee reviewed the quarterly figures and asked for the missing receipts.",
    "Each member read the summary aloud; nobody objected to the new travel policy.",
]


def test_prev_token_test_passes_are_the_models_own(model):
    """The four passes' attention outputs equal hooks on the plain model: the
    head's o_proj columns zeroed at t (A), the layer's v_proj output zeroed at
    t-k (B), both (A+B); the metrics are their inner products and cosines."""
    layer, head = 1, 2
    result = model.prev_token_test(
        TEXTS, (layer, head), n=3, offsets=[1, 3], seed=4, progress=False
    )
    assert result.outputs["B"].shape[:2] == (2, 3)
    attn = [block.self_attn for block in model.hf_model.model.layers]
    dim = model.hf_model.config.head_dim

    def outputs(ids, t, zero_head=False, zero_value_at=None):
        kept, handles = [], []
        for module in attn:
            handles.append(
                module.register_forward_hook(lambda m, a, o: kept.append(o[0][0, t].clone()))
            )
        if zero_head:

            def pre(_m, args):
                x = args[0].clone()
                x[:, t, head * dim : (head + 1) * dim] = 0
                return (x,)

            handles.append(attn[layer].o_proj.register_forward_pre_hook(pre))
        if zero_value_at is not None:

            def post(_m, _a, out):
                out = out.clone()
                out[:, zero_value_at] = 0
                return out

            handles.append(attn[layer].v_proj.register_forward_hook(post))
        try:
            with torch.no_grad():
                model.hf_model(input_ids=torch.as_tensor(ids)[None])
        finally:
            for handle in handles:
                handle.remove()
        return torch.stack(kept).numpy()

    for i, t in enumerate(result.positions):
        ids = model.tokenizer(TEXTS[i % 2])["input_ids"]
        np.testing.assert_allclose(result.outputs["base"][i], outputs(ids, t), atol=TOL, rtol=0)
        np.testing.assert_allclose(
            result.outputs["A"][i], outputs(ids, t, zero_head=True), atol=TOL, rtol=0
        )
        for k_index, k in enumerate([1, 3]):
            b = outputs(ids, t, zero_value_at=t - k)
            ab = outputs(ids, t, zero_head=True, zero_value_at=t - k)
            np.testing.assert_allclose(result.outputs["B"][k_index, i], b, atol=TOL, rtol=0)
            np.testing.assert_allclose(result.outputs["A+B"][k_index, i], ab, atol=TOL, rtol=0)
    table = result.table(offset=3)
    base, ablated = result.outputs["base"][:, 2], result.outputs["A"][:, 2]
    nip = (base * ablated).sum(-1) / (base * base).sum(-1)
    row = table[(table["pair"] == "base vs A") & (table["layer"] == 2)].iloc[0]
    assert row["inner_mean"] == pytest.approx(float(nip.mean()), rel=1e-5)
    # layers before the head's are untouched by A: inner product and cosine are 1
    early = table[(table["pair"] == "base vs A") & (table["layer"] == 0)].iloc[0]
    assert early["inner_mean"] == pytest.approx(1.0, abs=1e-6) and early["cos_sd"] < 1e-6
    sweep = result.sweep()
    assert sweep["offset"].tolist() == [1, 3]
    effect = np.linalg.norm(
        result.outputs["A+B"][:, :, -1] - result.outputs["B"][:, :, -1], axis=-1
    )
    effect /= np.linalg.norm(result.outputs["A"][:, -1] - result.outputs["base"][:, -1], axis=-1)
    np.testing.assert_allclose(sweep["redundancy"], 1 - effect.mean(axis=1), rtol=1e-6)
    assert "head L1H2 over 3 texts" in repr(result)
    with pytest.raises(tw.ArgumentError, match="at most 40 tokens long"):
        model.prev_token_test(["short"], (1, 2), n=1, offsets=[40], progress=False)
    with pytest.raises(tw.SelectionError, match="head=9 is out of range"):
        model.prev_token_test(TEXTS, (1, 9), n=1, progress=False)
