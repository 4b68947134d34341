"""`Model.head_atlas` on tiny models: every metric equals an oracle written
from the formulas on the eager model's `output_attentions=True` over the
atlas's own probes (`atlas.probes`, one probe at a time; the atlas runs
batched on the SDPA model, in chunks of 7 query rows), the OV metrics equal
the z-score formula on `ov_logits`, the reducers give the closed forms on
synthetic rows (uniform causal attention, a perfect previous-token head) and
on a model whose attention is uniform, probe positions point at the intended
tokens with and without a BOS, and bad input is refused. One slow test on the
embedded model."""

from __future__ import annotations

import copy
import unicodedata

import numpy as np
import pytest
import torch

import tealeaves_widgets as tw
from tealeaves_widgets.core.head_atlas import METRIC_NAMES
from tealeaves_widgets.models import capture
from tealeaves_widgets.models.head_atlas import (
    _SLOTS,
    DelimiterReducer,
    EntropyReducer,
    PatternReducer,
    PickReducer,
    _Batch,
    pick_entries,
)
from tealeaves_widgets.models.ov import ov_logits, ov_score
from tealeaves_widgets.prompt.probes import (
    IOI_ROLES,
    NAMES,
    ORDINAL_LISTS,
    ProbeSizes,
    build_probes,
)
from tests.helpers.tiny_models import make_tiny_model

TOL = 1e-5
TYPES = ["llama", "mistral", "gemma2", "gpt_oss", "gpt2"]
SIZES = ProbeSizes(
    n_text=2,
    text_length=40,
    n_random=3,
    random_length=24,
    max_offset=8,
    n_repeated=3,
    repeat_length=12,
    n_ordinal=3,
    ordinal_length=5,
    n_ioi=5,
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(capture, "REDUCE_CHUNK", 7)


def allowed_mask(config, layer: int, T: int) -> np.ndarray:
    """(T, T) bool from the formulas: j <= i, and i - j < window on a sliding layer."""
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = j <= i
    window = getattr(config, "sliding_window", None)
    kinds = getattr(config, "layer_types", None)
    if window is not None and (kinds is None or kinds[layer] == "sliding_attention"):
        allowed &= i - j < window
    return allowed


class Eager:
    """The eager twin of a tiny model: (layer, head, T, T) float64 weights per probe."""

    def __init__(self, model_type: str) -> None:
        self.hf = make_tiny_model(model_type, attn_implementation="eager")

    @torch.no_grad()
    def weights(self, ids: list[int]) -> np.ndarray:
        out = self.hf(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
        return np.stack([a[0].double().numpy() for a in out.attentions])

    def masks(self, T: int) -> np.ndarray:
        layers = self.hf.config.num_hidden_layers
        return np.stack([allowed_mask(self.hf.config, layer, T) for layer in range(layers)])


def delimiter_text(text: str) -> bool:
    """Punctuation only once whitespace is stripped, or whitespace with a line break."""
    core = text.strip()
    if core == "":
        return "\n" in text
    return all(unicodedata.category(c)[0] == "P" for c in core)


def oracle(atlas: tw.HeadAtlas, eager: Eager, tokenizer) -> dict[str, np.ndarray]:
    """Every attention metric from the formulas, probe by probe, float64."""
    first = 1 if atlas.bos_prepended else 0
    got: dict[str, list[np.ndarray]] = {}

    def add(name: str, values: np.ndarray) -> None:  # values (layer, head, rows)
        got.setdefault(name, []).append(values)

    shares, uniform, entropies = [], [], []
    for ids in atlas.probes["text"]:
        A, T = eager.weights(ids), len(ids)
        rows = np.arange(first + 1, T)
        add("previous_token", A[:, :, rows, rows - 1])
        add("bos", A[:, :, 1:, 0])
        delim = np.array([delimiter_text(tokenizer.decode([t])) for t in ids])
        for i in range(1, T):
            keys = np.arange(1, i + 1)
            shares.append(A[:, :, i, keys[delim[keys]]].sum(-1) / A[:, :, i, keys].sum(-1))
            uniform.append(delim[keys].sum() / i)
        M = eager.masks(T)
        for layer in range(A.shape[0]):
            for i in range(T):
                allowed = M[layer, i]
                if allowed.sum() < 2:
                    continue
                p = A[layer][:, i][:, allowed]  # (head, keys)
                p = p / p.sum(-1, keepdims=True)
                h = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(-1)
                entropies.append((layer, h / np.log(allowed.sum())))
    profile: list[list[np.ndarray]] = [[] for _ in range(atlas.profiles.shape[-1])]
    for ids in atlas.probes["random"]:
        A, T = eager.weights(ids), len(ids)
        rows = np.arange(first + 1, T)
        add("previous_token_random", A[:, :, rows, rows - 1])
        for d in range(len(profile)):
            rows = np.arange(first + d, T)
            profile[d].append(A[:, :, rows, rows - d])
    pattern = []
    for ids in atlas.probes["repeated"]:
        A = eager.weights(ids)
        n = (len(ids) - first) // 2
        assert ids[first : first + n] == ids[first + n :]
        k = np.arange(n)
        add("induction", A[:, :, first + n + k, first + k + 1])
        add("duplicate_token", A[:, :, first + n + k, first + k])
        pattern.append(A)
    for ids, end, s2 in zip(
        atlas.probes["ioi"], atlas.ioi_positions["end"], atlas.ioi_positions["s2"], strict=True
    ):
        add("s2_attention", eager.weights(ids)[:, :, end, s2][..., None])
    scores = {name: np.concatenate(v, -1).mean(-1) for name, v in got.items()}
    scores["delimiter"] = np.mean(shares, 0) / np.mean(uniform)
    n_layers = scores["bos"].shape[0]
    scores["entropy"] = np.stack(
        [np.mean([h for layer, h in entropies if layer == lay], 0) for lay in range(n_layers)]
    )
    prof = np.stack([np.concatenate(p, -1).mean(-1) for p in profile], -1)
    scores["offset_score"] = prof[..., 1:].max(-1)
    scores["offset_peak"] = prof[..., 1:].argmax(-1) + 1.0
    scores["profile"] = prof
    scores["pattern"] = np.mean(pattern, 0)
    return scores


def z_scores(model, ids: list[int], positions, targets, candidates) -> np.ndarray:
    """(example, layer, head) z of each target's OV logit over the candidates."""
    pool = np.unique(candidates)
    logits = ov_logits(model, np.array(ids), np.array(positions), pool).astype(np.float64)
    out = []
    for column, target in enumerate(targets):
        values = logits[:, :, column]
        z = (values[..., list(pool).index(target)] - values.mean(-1)) / values.std(-1)
        out.append(z)
    return np.stack(out)


def ov_oracle(model, atlas: tw.HeadAtlas) -> dict[str, np.ndarray]:
    first = 1 if atlas.bos_prepended else 0
    parts = []
    for name in ("ordinal", "ordinal_control"):
        zs = []
        for ids in atlas.probes[name]:
            items = ids[first:]
            k = np.arange(len(items) - 1)
            zs.append(z_scores(model, ids, first + k, [items[j + 1] for j in k], items))
        parts.append(np.concatenate(zs).mean(0))
    at = atlas.ioi_positions
    names = sorted(
        {ids[p] for ids, p in zip(atlas.probes["ioi"], at["io"], strict=True)}
        | {ids[p] for ids, p in zip(atlas.probes["ioi"], at["s1"], strict=True)}
    )
    copies = [
        z_scores(model, ids, [p], [ids[p]], names)[0]
        for ids, p in zip(atlas.probes["ioi"], at["io"], strict=True)
    ]
    return {"successor": parts[0] - parts[1], "ov_copy": np.mean(copies, 0)}


@pytest.fixture(scope="module", params=TYPES)
def built(request, smol_tokenizer):
    model = tw.load_model(make_tiny_model(request.param), tokenizer=smol_tokenizer)
    eager = Eager(request.param)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(capture, "REDUCE_CHUNK", 7)
        atlas = model.head_atlas(sizes=SIZES, seed=3, progress=False)
    return model, eager, atlas


def test_every_metric_equals_the_oracle_on_eager_weights(built, smol_tokenizer):
    model, eager, atlas = built
    s = model.shape
    assert set(atlas.scores) == set(METRIC_NAMES)
    assert all(v.shape == (s.n_layers, s.n_heads) for v in atlas.scores.values())
    assert len(atlas.probes["text"][0]) > 2 * 16  # past the sliding window of the tiny models
    expected = oracle(atlas, eager, smol_tokenizer) | ov_oracle(model, atlas)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(
            atlas.score(name), expected[name], atol=TOL, rtol=TOL, err_msg=name
        )
    np.testing.assert_allclose(atlas.profiles, expected["profile"], atol=TOL, rtol=TOL)
    assert atlas.profiles.shape == (s.n_layers, s.n_heads, SIZES.max_offset + 1)
    P = len(atlas.probes["repeated"][0])
    assert atlas.patterns.shape == (s.n_layers, s.n_heads, P, P)
    assert atlas.patterns.dtype == np.float32
    np.testing.assert_allclose(atlas.patterns, expected["pattern"], atol=TOL)
    assert np.all(np.triu(atlas.patterns, 1) == 0)


def test_the_atlas_keeps_its_probes_and_says_what_it_measured(built, smol_tokenizer):
    model, _, atlas = built
    bos = smol_tokenizer.bos_token_id
    assert atlas.bos_prepended and atlas.seed == 3
    assert all(seq[0] == bos for seqs in atlas.probes.values() for seq in seqs)
    assert {k: len(v) for k, v in atlas.probes.items()} == {
        "text": 2,
        "random": 3,
        "repeated": 3,
        "ordinal": 3,
        "ordinal_control": 3,
        "ioi": 5,
    }
    assert "','" in atlas.notes["delimiter"] and "'.'" in atlas.notes["delimiter"]
    assert "BOS" in atlas.notes["bos"]
    assert "ordinal_control" in atlas.notes["successor"]
    # the same probes passed back give the same atlas
    again = model.head_atlas(
        probes={
            **{k: v for k, v in atlas.probes.items() if k != "ioi"},
            "ioi": [
                {"ids": ids, **{role: atlas.ioi_positions[role][k] for role in IOI_ROLES}}
                for k, ids in enumerate(atlas.probes["ioi"])
            ],
        },
        sizes=SIZES,
        progress=False,
    )
    assert again.probes == atlas.probes and again.ioi_positions == atlas.ioi_positions
    for name in METRIC_NAMES:
        np.testing.assert_allclose(again.score(name), atlas.score(name), atol=1e-6, err_msg=name)
    assert again.notes["probes"].startswith("user probe sets")


def test_without_a_bos_position_zero_is_an_ordinary_token(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    atlas = model.head_atlas(sizes=SIZES, seed=3, prepend_bos=False, progress=False)
    assert not atlas.bos_prepended
    assert all(seq[0] != smol_tokenizer.bos_token_id for seq in atlas.probes["random"])
    assert "ordinary" in atlas.notes["bos"]
    expected = oracle(atlas, Eager("llama"), smol_tokenizer) | ov_oracle(model, atlas)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(
            atlas.score(name), expected[name], atol=TOL, rtol=TOL, err_msg=name
        )


def test_positions_point_at_the_intended_tokens_with_and_without_bos(smol_tokenizer):
    vocab = 49152
    with_bos = build_probes(smol_tokenizer, vocab, seed=4, sizes=SIZES, prepend_bos=True)
    without = build_probes(smol_tokenizer, vocab, seed=4, sizes=SIZES, prepend_bos=False)
    bos = smol_tokenizer.bos_token_id
    names = {" " + n for n in NAMES}
    for probes, shift in ((with_bos, 1), (without, 0)):
        assert probes.first == shift
        for k, ids in enumerate(probes.sets["ioi"]):
            at = {role: probes.ioi[role][k] for role in IOI_ROLES}
            text = [smol_tokenizer.decode([t]) for t in ids]
            assert text[at["io"]] in names and text[at["s1"]] in names
            assert text[at["io"]] != text[at["s1"]]
            assert ids[at["s1"]] == ids[at["s2"]] and at["s1"] < at["s2"] < at["end"]
            assert at["end"] == len(ids) - 1 and text[at["end"]] == " to"
            a, b = sorted((at["io"], at["s1"]))  # "{A} and {B}"
            assert text[a + 1] == " and" and b == a + 2
        for ids in probes.sets["repeated"]:
            n = (len(ids) - shift) // 2
            assert ids[shift : shift + n] == ids[shift + n :]
        words = {" " + w for items in ORDINAL_LISTS for w in items}
        for ids in probes.sets["ordinal"]:
            assert all(smol_tokenizer.decode([t]) in words for t in ids[shift:])
    for name, seqs in without.sets.items():
        assert [[bos, *seq] for seq in seqs] == with_bos.sets[name], name
    for role in IOI_ROLES:
        assert [p + 1 for p in without.ioi[role]] == with_bos.ioi[role]
    # IOI: the first name sits right after the template's first word
    ids = with_bos.sets["ioi"][0]
    first_word = smol_tokenizer.decode(ids[1:2])
    assert first_word in ("When", "After", "Then", "While")


def _synthetic(kind: str, T: int, batch: int, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, head, T, T) rows and the causal allowed mask."""
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = (j <= i)[None, None].expand(batch, 1, T, T)
    if kind == "uniform":
        rows = (j <= i).float() / (i + 1).float()
    else:  # perfect previous-token head (row 0 on itself)
        rows = (j == (i - 1).clamp_min(0)).float()
    return rows[None, None].expand(batch, heads, T, T).contiguous(), allowed


def _feed(reducers, rows, allowed, chunk: int = 5) -> None:
    T = rows.shape[2]
    for start in range(0, T, chunk):
        pos = torch.arange(start, min(T, start + chunk))
        for reducer in reducers:
            reducer(0, pos, rows[:, :, pos], allowed[:, :, pos])


@pytest.mark.parametrize("bos", [True, False])
def test_the_reducers_give_the_closed_forms(smol_tokenizer, bos):
    probes = build_probes(smol_tokenizer, 49152, seed=1, sizes=SIZES, prepend_bos=bos)
    first, heads = probes.first, 3
    n_slots = len(_SLOTS) + SIZES.max_offset + 1
    slot = {name: k for k, name in enumerate(_SLOTS)}
    for kind in ("uniform", "previous"):
        picks = PickReducer(1, heads, n_slots, torch.device("cpu"))
        for name in ("text", "random", "repeated"):
            batch = _Batch(name, tuple(range(len(probes.sets[name]))))
            T = len(probes.sets[name][0])
            rows, allowed = _synthetic(kind, T, len(batch.members), heads)
            picks.set_batch(*pick_entries(probes, batch))
            _feed([picks], rows, allowed)
        assert picks.counts[slot["bos"]] > 0 and picks.counts[slot["s2_attention"]] == 0
        mean = picks.sums[0].numpy() / np.maximum(picks.counts, 1)
        T = len(probes.sets["random"][0])
        if kind == "uniform":  # 1 / (i + 1) averaged over the rows each score reads
            i = np.arange(first + 1, T)
            np.testing.assert_allclose(mean[:, slot["previous_token_random"]], (1 / (i + 1)).mean())
            for d in range(SIZES.max_offset + 1):
                i = np.arange(first + d, T)
                np.testing.assert_allclose(mean[:, len(_SLOTS) + d], (1 / (i + 1)).mean())
            P = len(probes.sets["repeated"][0])
            n = (P - first) // 2
            i = first + n + np.arange(n)
            np.testing.assert_allclose(mean[:, slot["induction"]], (1 / (i + 1)).mean())
            np.testing.assert_allclose(mean[:, slot["duplicate_token"]], (1 / (i + 1)).mean())
        else:
            np.testing.assert_allclose(mean[:, slot["previous_token"]], 1.0)
            np.testing.assert_allclose(mean[:, slot["previous_token_random"]], 1.0)
            np.testing.assert_allclose(mean[:, len(_SLOTS) + 1], 1.0)
            np.testing.assert_allclose(mean[:, len(_SLOTS) + 2 :], 0.0)
            np.testing.assert_allclose(mean[:, slot["induction"]], 0.0)
            np.testing.assert_allclose(mean[:, slot["duplicate_token"]], 0.0)
    # uniform rows: the delimiter share equals its baseline, the entropy is 1,
    # the mean pattern is the uniform causal matrix
    T = 30
    rows, allowed = _synthetic("uniform", T, 2, heads)
    delim = np.zeros((2, T), bool)
    delim[:, [3, 7, 8, 20]] = True
    delimiter, entropy = (
        DelimiterReducer(1, heads, torch.device("cpu")),
        EntropyReducer(1, heads, torch.device("cpu")),
    )
    pattern = PatternReducer(1, heads, T, torch.device("cpu"))
    delimiter.set_batch(delim)
    _feed([delimiter, entropy, pattern], rows, allowed)
    i = np.arange(1, T)
    baseline = (np.cumsum(delim[0, 1:]) / i).mean()
    np.testing.assert_allclose(delimiter.sums[0].numpy() / delimiter.rows, baseline, rtol=1e-6)
    np.testing.assert_allclose(entropy.sums[0].numpy() / entropy.rows[0].numpy(), 1.0, rtol=1e-6)
    assert entropy.rows[0, 0] == 2 * (T - 1)  # row 0 has one key
    np.testing.assert_allclose(pattern.sums[0].numpy() / 2, rows[0].numpy(), rtol=1e-6)


def test_uniform_attention_gives_the_closed_forms_end_to_end(smol_tokenizer):
    hf = make_tiny_model("llama")
    with torch.no_grad():
        for block in hf.model.layers:
            block.self_attn.q_proj.weight.zero_()  # every score 0: uniform over j <= i
    model = tw.load_model(hf, tokenizer=smol_tokenizer)
    atlas = model.head_atlas(sizes=SIZES, progress=False)
    T = len(atlas.probes["text"][0])
    np.testing.assert_allclose(atlas.score("previous_token"), (1 / np.arange(3, T + 1)).mean())
    np.testing.assert_allclose(atlas.score("bos"), (1 / np.arange(2, T + 1)).mean(), rtol=TOL)
    np.testing.assert_allclose(atlas.score("delimiter"), 1.0, rtol=TOL)
    np.testing.assert_allclose(atlas.score("entropy"), 1.0, rtol=TOL)
    P = len(atlas.probes["repeated"][0])
    n = (P - 1) // 2
    i = 1 + n + np.arange(n)
    np.testing.assert_allclose(atlas.score("induction"), (1 / (i + 1)).mean(), rtol=TOL)
    at = atlas.ioi_positions["end"]
    np.testing.assert_allclose(
        atlas.score("s2_attention"), np.mean(1 / (np.array(at) + 1)), rtol=TOL
    )
    i, j = np.arange(P)[:, None], np.arange(P)[None, :]
    uniform = np.broadcast_to(np.where(j <= i, 1 / (i + 1), 0.0), atlas.patterns.shape)
    np.testing.assert_allclose(atlas.patterns, uniform, atol=1e-6)


def test_bad_input_is_refused(built, smol_tokenizer):
    model, _, atlas = built
    with pytest.raises(tw.SelectionError, match=r"layer=99 is out of range"):
        atlas.head(99, 0)
    with pytest.raises(tw.SelectionError, match=r"head=-9 is out of range|head=-9"):
        atlas.head(0, -9)
    assert set(atlas.head(0, 1)) == set(METRIC_NAMES)
    with pytest.raises(tw.ArgumentError, match=r"Unknown probe sets \['nope'\]"):
        model.head_atlas(probes={"nope": [[5, 6]]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match=r"needs? at least 9 .*max_offset=8"):
        model.head_atlas(probes={"random": [list(range(10, 15))]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="random_length=20 is too short for max_offset=32"):
        tw.ProbeSizes(random_length=20)
    with pytest.raises(tw.ArgumentError, match=r"out of the model's vocabulary 0\.\.49151"):
        model.head_atlas(probes={"text": [[5, 6, 49152]]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="halves differ"):
        model.head_atlas(probes={"repeated": [[5, 6, 7, 5, 6, 8]]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="one length"):
        model.head_atlas(
            probes={"repeated": [[5, 6, 5, 6], [5, 6, 7, 5, 6, 7]]}, sizes=SIZES, progress=False
        )
    with pytest.raises(tw.ArgumentTypeError, match="keys 'ids', 'io', 's1', 's2', 'end'"):
        model.head_atlas(probes={"ioi": [[5, 6, 7]]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="s1 < s2 < end"):
        bad = {"ids": [5, 6, 7, 8], "io": 0, "s1": 2, "s2": 1, "end": 3}
        model.head_atlas(probes={"ioi": [bad]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="without 'ordinal_control'"):
        model.head_atlas(probes={"ordinal": [[5, 6, 7]]}, sizes=SIZES, progress=False)
    with pytest.raises(tw.ArgumentError, match="pass one of them"):
        model.head_atlas(probes={"text": [[5, 6, 7]]}, texts=["Hello there."], progress=False)
    with pytest.raises(tw.ArgumentError, match='probes must be "default"'):
        model.head_atlas(probes="all", progress=False)
    with pytest.raises(tw.ArgumentError, match="needs? at least 2"):
        model.head_atlas(texts=["Hi"], sizes=SIZES, progress=False)


def test_a_tokenizer_without_bos_needs_prepend_bos_false(smol_tokenizer):
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.bos_token = None
    assert tokenizer.bos_token_id is None
    model = tw.load_model(make_tiny_model("gpt2"), tokenizer=tokenizer)
    with pytest.raises(tw.ArgumentError, match=r"no BOS token\. Pass prepend_bos=False"):
        model.head_atlas(sizes=SIZES, progress=False)
    atlas = model.head_atlas(sizes=SIZES, prepend_bos=False, progress=False)
    assert not atlas.bos_prepended and "ordinary probe token" in atlas.notes["bos"]


def test_texts_are_the_users_own(smol_tokenizer):
    model = tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)
    texts = ["The cat sat on the mat.", "One, two, three: go!\nAgain."]
    atlas = model.head_atlas(texts=texts, sizes=SIZES, progress=False)
    bos = smol_tokenizer.bos_token_id
    assert atlas.probes["text"] == [
        [bos, *smol_tokenizer(t, add_special_tokens=False)["input_ids"]] for t in texts
    ]
    assert "user probe sets: ['text']" in atlas.notes["probes"]


@pytest.mark.slow
def test_the_embedded_model_has_a_real_previous_token_head(smol_model):
    atlas = smol_model.head_atlas(progress=False)
    assert atlas.n_layers == 30 and atlas.n_heads == 9
    best = atlas.top("previous_token", 1).iloc[0]
    layer, head = int(best["layer"]), int(best["head"])
    scores = atlas.head(layer, head)
    assert scores["previous_token"] > 0.5
    # not a sink artefact: it pays the previous token more than the first token,
    # on random tokens too
    assert scores["bos"] < scores["previous_token"]
    assert scores["previous_token_random"] > 0.3
    assert int(atlas.score("offset_peak")[layer, head]) == 1
    top_induction = atlas.top("induction", 1).iloc[0]
    assert top_induction["induction"] > 0.3


def test_the_ov_metrics_are_ov_scores_of_the_probes(built):
    """successor and ov_copy, read from the batched passes' attention inputs,
    equal `models.ov.ov_score` called probe by probe (one pass each)."""
    model, _, atlas = built
    first = 1
    parts = []
    for name in ("ordinal", "ordinal_control"):
        total, count = 0.0, 0
        for ids in atlas.probes[name]:
            examples = [(ids, p, ids[p + 1]) for p in range(first, len(ids) - 1)]
            total = total + ov_score(model, examples, np.unique(ids[first:])) * len(examples)
            count += len(examples)
        parts.append(total / count)
    np.testing.assert_allclose(atlas.score("successor"), parts[0] - parts[1], atol=1e-6)
    at = atlas.ioi_positions
    ioi = atlas.probes["ioi"]
    names = np.unique(
        [s[p] for s, p in zip(ioi, at["io"], strict=True)]
        + [s[p] for s, p in zip(ioi, at["s1"], strict=True)]
    )
    examples = [(s, p, s[p]) for s, p in zip(ioi, at["io"], strict=True)]
    np.testing.assert_allclose(atlas.score("ov_copy"), ov_score(model, examples, names), atol=1e-6)
