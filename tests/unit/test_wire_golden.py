"""The wire is defined once (widgets/schema.py): every payload and message the
code builds matches its TypedDict, the TypeScript types are generated from it
and up to date, and the golden fixtures vitest decodes are what the code
writes now (see tests/helpers/golden.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tealeaves_widgets.widgets import schema
from tests.helpers import golden

ROOT = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("TEALEAVES_UPDATE_GOLDEN") == "1"
TYPES = {
    "run_payload": schema.RunPayload,
    "curves_payload": schema.RunPayload,
    "diff_payload": schema.DiffPayload,
    "diff_sets_payload": schema.DiffPayload,
    "aggregate_payload": schema.AggregatePayload,
    "aggregate_single_payload": schema.AggregatePayload,
    "ablation_payload": schema.AblationPayload,
    "attribution_payload": schema.AttributionPayload,
    "head_gates_payload": schema.HeadGatesPayload,
    "prev_token_payload": schema.PrevTokenPayload,
    "head_atlas_payload": schema.HeadAtlasPayload,
    "head_grid_payload": schema.HeadGridPayload,
    "generation_payload": schema.GenerationPayload,
    "snapshots_payload": schema.SnapshotsPayload,
    "residual_payload": schema.ResidualPayload,
    "cross_layer_payload": schema.CrossLayerPayload,
    "neurons_payload": schema.NeuronsPayload,
    "neuron_compare_payload": schema.NeuronComparePayload,
    "head_rows_reply": schema.HeadRowsReply,
    "error_reply": schema.ErrorReply,
    "query_at_reply": schema.QueryAtReply,
}


@pytest.fixture(scope="module")
def payloads():
    return golden.payloads()


@pytest.mark.parametrize("name", list(TYPES))
def test_every_payload_and_message_matches_its_schema(payloads, name):
    value = payloads[name]
    content = value["content"] if name.endswith("_reply") else value
    assert schema.check_typeddict(content, TYPES[name], name) == []


def test_the_schema_check_finds_a_renamed_key(payloads):
    renamed = dict(payloads["run_payload"])
    renamed["token_count"] = renamed.pop("n_tokens")
    assert schema.check_typeddict(renamed, schema.RunPayload, "payload") == [
        "payload: missing key 'n_tokens'",
        "payload: unknown key 'token_count'",
    ]
    broken = dict(payloads["diff_payload"], n_layers="3")
    assert schema.check_typeddict(broken, schema.DiffPayload) == [
        "payload.n_layers: expected int, got '3'"
    ]


def test_the_live_layers_message_matches_its_schema():
    import numpy as np

    from tealeaves_widgets.widgets.live import LiveExplorer, LiveFeed

    run = golden.golden_run(golden.BASE_TOKENS)
    sent = []
    view = LiveExplorer(run)
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    feed = LiveFeed(view, min_interval=0.0)
    feed(0, np.asarray(run.attention_heads[0]))
    ((content, buffers),) = sent
    assert schema.check_typeddict(content, schema.LayersMessage, "layers") == []
    assert (content["v"], content["kind"], content["id"]) == (1, "layers", 0)
    assert len(buffers) == 5


def test_the_typescript_types_are_generated_from_the_schema():
    generated = ROOT / "js" / "src" / "schema.gen.ts"
    text = schema.typescript()
    if UPDATE:
        generated.write_text(text, encoding="utf-8")
    assert generated.read_text(encoding="utf-8") == text, (
        "js/src/schema.gen.ts is stale: run `python tealeaves_widgets/widgets/schema.py "
        "js/src/schema.gen.ts` (pip install -e . does) and commit it."
    )
    for cls in (schema.RunPayload, schema.DiffPayload, schema.LayersMessage):
        assert f"export interface {cls.__name__} {{" in text
    assert "  pending?: Pending;" in text and "  n_tokens: number;" in text


@pytest.mark.parametrize("name", list(TYPES))
def test_the_golden_fixtures_are_what_the_code_writes(payloads, name):
    path = golden.GOLDEN / f"{name}.json"
    text = golden.fixture_text(name, payloads[name])
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing; regenerate (see tests/helpers/golden.py)"
    committed = json.loads(path.read_text(encoding="utf-8"))
    now = json.loads(text)
    changed = _differences(committed["payload"], now["payload"], name)
    assert changed == [], (
        f"The {name} on the wire changed: {changed[:8]}. If that is intended, bump "
        "SCHEMA_VERSION (or MESSAGE_VERSION) in widgets/schema.py when a field changes "
        "meaning, then run TEALEAVES_UPDATE_GOLDEN=1 python -m pytest "
        "tests/unit/test_wire_golden.py and npm test in js/."
    )
    assert committed["expect"] == now["expect"]


def _differences(old, new, where: str) -> list[str]:
    """Keys added, removed or changed between two JSON values (paths)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{where}.{k}: removed" for k in old if k not in new]
        out += [f"{where}.{k}: added" for k in new if k not in old]
        for key in old.keys() & new.keys():
            out += _differences(old[key], new[key], f"{where}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = enumerate(zip(old, new, strict=True))
        return [d for i, (a, b) in pairs for d in _differences(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {json.dumps(old)[:40]} -> {json.dumps(new)[:40]}"]
