"""Scenarios run end to end: on tiny models with the real ChatML tokenizer (the
generation equals `generate_capture`, the snapshots equal
`conversation_snapshots` and the model's own hidden states, the tables keep the
scenario's layers, `run_at_each_message` captures each prefix), bad input is
refused before anything is written, saving is atomic; and Activation Lab's own
example file runs on the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import tealeaves_widgets as tw
from tealeaves_widgets.core import seam
from tests.helpers.checks import assert_same_run
from tests.helpers.tiny_models import make_tiny_model

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "example_qwen_basic.yaml"

CONVERSATION = [
    {"role": "system", "content": "You are a supportive friend."},
    {"role": "user", "content": "I got the job! I am over the moon."},
    {"role": "assistant", "content": "Congratulations, that is wonderful news!"},
    {"role": "user", "content": "But now I am terrified I will fail at it."},
]
REFERENCES = {
    "joy": [{"role": "user", "content": "I am so happy, everything is wonderful!"}],
    "fear": [{"role": "user", "content": "I am scared and trembling with dread."}],
    "anger": [{"role": "user", "content": "I am furious, this is outrageous."}],
    "calm": [{"role": "user", "content": "I feel peaceful, relaxed and content."}],
}
TINY_ID = "tiny/llama-scenario"


def scenario_data(**sections: object) -> dict:
    data: dict = {
        "name": "mood_swings",
        "model": {"id": TINY_ID, "dtype": "float32", "device": "cpu"},
        "prompt": {"messages": CONVERSATION},
        "generation": {"max_new_tokens": 4, "do_sample": False, "seed": 42},
        "capture": {"top_k_probs": 5, "layers": [0, 2]},
        "reference_states": [
            {"label": label, "messages": messages} for label, messages in REFERENCES.items()
        ],
    }
    data.update(sections)
    return data


def write(folder: Path, data: dict, name: str = "mood.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model(smol_tokenizer):
    hf_model = make_tiny_model("llama")
    hf_model.config.name_or_path = TINY_ID  # the id Model takes, as from_pretrained sets it
    return tw.load_model(hf_model, tokenizer=smol_tokenizer)


@pytest.fixture(scope="module")
def result(model, tmp_path_factory):
    path = write(tmp_path_factory.mktemp("scenario"), scenario_data())
    return tw.load_scenario(path, model=model)


def cosine64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


# -- running -----------------------------------------------------------------------


def test_generation_equals_generate_capture(model, result):
    expected = model.generate_capture(
        tw.Case(messages=CONVERSATION), max_new_tokens=4, top_k_probs=5, keep_logits=True
    )
    gen = result.generation
    np.testing.assert_array_equal(gen.token_ids, expected.token_ids)
    assert gen.tokens == expected.tokens and gen.n_steps == 4
    np.testing.assert_allclose(gen.logprobs, expected.logprobs, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(gen.top_ids, expected.top_ids)
    assert gen.top_ids.shape == (4, 5)
    assert gen.logits is not None and expected.logits is not None  # capture.logits: true
    np.testing.assert_allclose(gen.logits, expected.logits, atol=1e-5, rtol=0)
    assert_same_run(gen.run, expected.run, tol=1e-6)
    # the prompt is the conversation rendered as tw.Case renders it
    assert gen.run.text.startswith(model.render(tw.Case(messages=CONVERSATION)).text)


def test_snapshots_equal_conversation_snapshots(model, result):
    expected = model.conversation_snapshots(CONVERSATION, REFERENCES, readout="gen_prompt")
    snap = result.snapshots
    assert snap.readout == "gen_prompt" and list(snap.references) == list(REFERENCES)
    for source in expected.sources:
        np.testing.assert_allclose(snap.states[source], expected.states[source], atol=1e-6)
        for label in REFERENCES:
            np.testing.assert_allclose(
                snap.references[label][source], expected.references[label][source], atol=1e-6
            )


def test_snapshots_are_the_models_states_at_the_generation_prompt(model, result):
    """Independent of conversation_snapshots: a plain forward pass of each
    prefix rendered with the generation prompt, its last token."""
    n_layers = model.shape.n_layers
    for m in range(len(CONVERSATION)):
        ids = model.tokenizer.apply_chat_template(
            CONVERSATION[: m + 1], tokenize=True, add_generation_prompt=True
        )
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        with torch.no_grad():
            hidden = model.hf_model(
                input_ids=torch.as_tensor([ids]), output_hidden_states=True
            ).hidden_states
        for layer in range(n_layers - 1):  # the last hidden state is after the final norm
            np.testing.assert_allclose(
                result.snapshots.states["hidden_out"][m, layer],
                hidden[layer + 1][0, -1].numpy(),
                atol=1e-5,
            )


def test_tables_keep_the_scenarios_layers(result):
    assert result.layers == (0, 2)
    table = result.compare("hidden_out")
    assert sorted(table["layer"].unique()) == [0, 2]
    assert len(table) == len(CONVERSATION) * len(REFERENCES) * 2
    states = result.snapshots.states["hidden_out"]  # (message, layer, hidden)
    for label in REFERENCES:
        ref = result.snapshots.references[label]["hidden_out"]  # (layer, hidden)
        expected = cosine64(states, ref[None])  # (message, layer)
        rows = table[table["reference"] == label]
        for _, row in rows.iterrows():
            assert row["cosine"] == pytest.approx(expected[row["message"], row["layer"]], abs=1e-6)
        means = result.message_table("hidden_out", "cosine")
        np.testing.assert_allclose(
            means[label].to_numpy(), expected[:, [0, 2]].mean(axis=1), atol=1e-6
        )
    # centred: the per-layer mean over every snapshot and reference comes out first
    stacked = np.concatenate(
        [states, np.stack([v["hidden_out"] for v in result.snapshots.references.values()])]
    ).astype(np.float64)
    mean = stacked.mean(axis=0)
    centred = result.compare("hidden_out", center=True)
    joy = (result.snapshots.references["joy"]["hidden_out"] - mean)[None]
    row = centred[(centred["reference"] == "joy") & (centred["message"] == 3)]
    np.testing.assert_allclose(
        row["cosine"].to_numpy(), cosine64(states[3] - mean, joy[0])[[0, 2]], atol=1e-6
    )


def test_snapshot_table_has_every_source_raw_and_centred(result):
    table = result.snapshot_table()
    assert set(table["source"]) == {"hidden_in", "hidden_out", "attn_out", "mlp_out"}
    assert set(table["centred"]) == {False, True}
    assert len(table) == 4 * 2 * len(CONVERSATION) * len(REFERENCES) * 2
    mlp = table[(table["source"] == "mlp_out") & table["centred"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        mlp[["message", "reference", "layer", "cosine", "mae", "jaccard"]],
        result.compare("mlp_out", center=True)[
            ["message", "reference", "layer", "cosine", "mae", "jaccard"]
        ],
    )


def test_sampling_follows_the_generation_options(model, tmp_path):
    options = {"max_new_tokens": 5, "do_sample": True, "temperature": 0.7, "top_k": 40, "seed": 7}
    path = write(tmp_path, scenario_data(generation=options, capture={"top_k_probs": 0}))
    result = tw.load_scenario(path, model=model)
    expected = model.generate_capture(
        tw.Case(messages=CONVERSATION),
        max_new_tokens=5,
        do_sample=True,
        temperature=0.7,
        top_k=40,
        seed=7,
        top_k_probs=1,
    )
    np.testing.assert_array_equal(result.generation.token_ids, expected.token_ids)
    assert result.generation.options["do_sample"] and result.generation.options["seed"] == 7
    assert result.generation.top_ids.shape[1] == 1  # top_k_probs: 0 keeps the top 1
    assert result.layers == (0, 1, 2) and result.snapshots.references.keys() == REFERENCES.keys()


def test_run_at_each_message_captures_every_prefix(model, tmp_path):
    data = scenario_data(prompt={"messages": CONVERSATION, "run_at_each_message": True})
    result = tw.load_scenario(write(tmp_path, data), model=model)
    assert result.scan is not None and len(result.scan) == len(CONVERSATION)
    assert result.scan.labels[0] == "msg1of4 (system)"
    for i, run in enumerate(result.scan.runs):
        assert_same_run(run, model.capture(tw.Case(messages=CONVERSATION[: i + 1])))
    plain = tw.load_scenario(write(tmp_path, scenario_data(), "plain.yaml"), model=model)
    assert plain.scan is None


def test_no_references_gives_empty_tables(model, tmp_path):
    data = scenario_data()
    del data["reference_states"]
    result = tw.load_scenario(write(tmp_path, data), model=model)
    assert result.snapshots.references == {}
    assert result.snapshots.states["hidden_out"].shape[0] == len(CONVERSATION)
    assert result.compare().empty and result.message_table().shape == (len(CONVERSATION), 0)


def test_repr_and_view(result, model):
    text = repr(result)
    assert "mood_swings" in text and TINY_ID in text and "4 references" in text
    assert "layers [0, 2]" in text
    view = seam.call("view", result)
    assert isinstance(view, tw.ScenarioView)
    assert view.generation_view.result is result.generation
    assert view.snapshots_view.result is result.snapshots
    assert "mood_swings" in view.children[0].value


def test_without_model_the_scenarios_model_is_loaded(model, tmp_path):
    """model.id a local folder: loaded by tw.load_model in model.dtype, and the
    run equals the same scenario on the model in memory."""
    folder = tmp_path / "tiny-llama"
    model.hf_model.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    data = scenario_data(model={"id": str(folder), "dtype": "float32", "device": "auto"})
    result = tw.load_scenario(write(tmp_path, data))
    assert result.model_info["model_id"] == str(folder)
    assert result.model_info["dtype"] == "float32" and result.model_info["device"] == "cpu"
    same = write(tmp_path, data, "same.yaml")
    in_memory = tw.load_scenario(same, model=model, ignore_model_id=True)
    np.testing.assert_array_equal(result.generation.token_ids, in_memory.generation.token_ids)
    np.testing.assert_allclose(
        result.snapshots.states["hidden_out"], in_memory.snapshots.states["hidden_out"], atol=1e-6
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="device auto maps to the GPUs here")
def test_the_embedded_id_loads_the_embedded_model(model, tmp_path, monkeypatch):
    import tealeaves_widgets.models.loading as loading

    calls = []

    def fake_load_model(*args, **kwargs):
        calls.append((args, kwargs))
        return model

    monkeypatch.setattr(loading, "load_model", fake_load_model)
    data = scenario_data(model={"id": "SmolLM2-135M-Instruct", "dtype": "bfloat16"})
    tw.load_scenario(write(tmp_path, data))
    # the embedded model is load_model() itself; device auto on a CPU-only machine: no device_map
    assert calls == [((), {"dtype": "bfloat16", "device_map": None})]


# -- refused ---------------------------------------------------------------------------


def test_layers_outside_the_model_are_refused(model, tmp_path):
    path = write(tmp_path, scenario_data(capture={"layers": [0, 3, 7]}))
    with pytest.raises(tw.ScenarioError) as caught:
        tw.load_scenario(path, model=model)
    message = str(caught.value)
    assert str(path) in message and "[3, 7]" in message and "3 layers (0..2)" in message


def test_another_models_id_needs_ignore_model_id(model, tmp_path):
    data = scenario_data(model={"id": "Qwen/Qwen2.5-3B-Instruct"})
    path = write(tmp_path, data)
    with pytest.raises(tw.ArgumentError, match="ignore_model_id=True") as caught:
        tw.load_scenario(path, model=model)
    assert "Qwen/Qwen2.5-3B-Instruct" in str(caught.value) and TINY_ID in str(caught.value)
    result = tw.load_scenario(path, model=model, ignore_model_id=True)
    assert result.model_info["model_id"] == TINY_ID
    assert "the scenario names Qwen/Qwen2.5-3B-Instruct" in repr(result)
    with pytest.raises(tw.ArgumentTypeError):
        tw.load_scenario(path, model="Qwen/Qwen2.5-3B-Instruct")  # type: ignore[arg-type]


def test_a_model_that_is_not_installed_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    # no network here: make the hub fail at once instead of retrying for ~25 s
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    data = scenario_data(model={"id": "tealeaves-tests/no-such-model"}, output={"dir": "runs"})
    path = write(tmp_path, data)
    with pytest.raises(tw.ModelNotInstalledError) as caught:
        tw.load_scenario(path)
    message = str(caught.value)
    assert str(path) in message and "'tealeaves-tests/no-such-model'" in message
    assert "model=tw.load_model()" in message and "ignore_model_id=True" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mood.yaml"]


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_on_a_machine_without_it_is_refused(tmp_path):
    data = scenario_data(model={"id": TINY_ID, "device": "mps"})
    path = write(tmp_path, data)
    with pytest.raises(tw.ScenarioError, match="model.device is 'mps'") as caught:
        tw.load_scenario(path)
    assert str(path) in str(caught.value)


def test_an_error_while_running_names_the_scenario(model, tmp_path):
    # the tiny model's context is 1024 positions: a long conversation does not fit
    long = [{"role": "user", "content": "word " * 1200}]
    path = write(tmp_path, scenario_data(prompt={"messages": long}))
    with pytest.raises(tw.TealeavesError) as caught:
        tw.load_scenario(path, model=model)
    assert str(path) in str(caught.value)


# -- saving ------------------------------------------------------------------------------


def test_save_writes_every_part(result, tmp_path):
    folder = result.save(tmp_path / "out")
    assert folder == tmp_path / "out"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "result.json",
            "scenario.yaml",
            "steps.csv",
            "top_k.csv",
            "snapshots.csv",
            "generation.tlrun",
            "logits.npy",
        ]
    )
    assert (folder / "scenario.yaml").read_text(encoding="utf-8") == result.scenario.text
    manifest = json.loads((folder / "result.json").read_text())
    assert manifest["format"] == "tealeaves-scenario-result" and manifest["layers"] == [0, 2]
    assert manifest["model_info"]["model_id"] == TINY_ID and manifest["readout"] == "gen_prompt"
    assert manifest["text"] == result.generation.text
    assert_same_run(tw.open_run(folder / "generation.tlrun"), result.generation.run, tol=0)
    np.testing.assert_array_equal(np.load(folder / "logits.npy"), result.generation.logits)
    steps = pd.read_csv(folder / "steps.csv", keep_default_na=False)
    np.testing.assert_array_equal(steps["token_id"], result.generation.token_ids)
    np.testing.assert_allclose(steps["logprob"], result.generation.logprobs, rtol=1e-6)
    snapshots = pd.read_csv(folder / "snapshots.csv")
    expected = result.snapshot_table()
    assert len(snapshots) == len(expected)
    np.testing.assert_allclose(snapshots["cosine"], expected["cosine"], rtol=1e-9)
    top = pd.read_csv(folder / "top_k.csv", keep_default_na=False)
    np.testing.assert_array_equal(top["id"].to_numpy().reshape(4, 5), result.generation.top_ids)


def test_save_with_a_scan_and_the_default_folder(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = scenario_data(
        prompt={"messages": CONVERSATION, "run_at_each_message": True},
        output={"dir": "results"},
        capture={"logits": False},
    )
    result = tw.load_scenario(write(tmp_path, data), model=model)
    folder = result.save()
    assert folder == Path("results") / "mood_swings"
    assert not (folder / "logits.npy").exists()  # capture.logits: false keeps none
    runs = tw.open_runs(folder / "scan")
    assert len(runs) == len(CONVERSATION)
    for saved, run in zip(runs.runs, result.scan.runs, strict=True):
        assert_same_run(saved, run, tol=0)


def test_an_existing_folder_is_replaced_only_when_asked(result, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(tw.RunFileError, match="already exists; pass overwrite=True"):
        result.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    result.save(folder, overwrite=True)
    assert not (folder / "mine.txt").exists() and (folder / "result.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_nothing_half_written(result, tmp_path, monkeypatch, failure):
    import tealeaves_widgets.io.scenario as scenario_io

    written = []

    def failing_save_run(run, path):  # the run file comes after the CSV tables
        written.extend(p.name for p in Path(path).parent.iterdir())
        raise failure

    monkeypatch.setattr(scenario_io, "save_run", failing_save_run)
    with pytest.raises((tw.RunFileError, KeyboardInterrupt)):
        result.save(tmp_path / "out")
    assert {"steps.csv", "snapshots.csv"} <= set(written)  # it did fail midway
    assert list(tmp_path.iterdir()) == []

    # over an existing result, a failure keeps the previous one whole
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "result.json").write_text("{}")
    with pytest.raises((tw.RunFileError, KeyboardInterrupt)):
        result.save(previous, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous"]
    assert [p.name for p in previous.iterdir()] == ["result.json"]


# -- Activation Lab's example, on the embedded model -----------------------------------------


@pytest.mark.slow
def test_activation_labs_example_runs_on_the_embedded_model(smol_model, tmp_path):
    scenario = tw.read_scenario(EXAMPLE)
    assert scenario.model.id == smol_model.model_id  # the embedded model's id: no override
    result = tw.load_scenario(EXAMPLE, model=smol_model)
    messages = [dict(m) for m in scenario.prompt.messages]
    expected = smol_model.generate_capture(
        tw.Case(messages=messages), max_new_tokens=1, top_k_probs=20, keep_logits=True
    )
    gen = result.generation
    assert gen.n_steps == 1 and gen.top_ids.shape == (1, 20)
    np.testing.assert_array_equal(gen.token_ids, expected.token_ids)
    np.testing.assert_allclose(gen.top_logprobs, expected.top_logprobs, atol=1e-5, rtol=0)
    assert_same_run(gen.run, expected.run)
    # Each message's state comes from its own prefix, so the first messages'
    # snapshots are those of the shorter conversation (fewer passes to check).
    snapshots = smol_model.conversation_snapshots(messages[:3], readout="gen_prompt")
    for source in snapshots.sources:
        # both read from the conversation's cache, one 3 messages long, one 10: the
        # prefix keys differ by float noise: up to 5e-6 of the state's largest dimension
        # (|x| up to ~900 in late layers) against one pass per prefix on this model
        got, want = result.snapshots.states[source][:3], snapshots.states[source]
        scale = np.abs(want).max(axis=-1, keepdims=True)  # per message and layer
        assert (np.abs(got - want) <= 1e-5 * scale).all(), source
    # the last message, against a plain forward pass of the whole conversation
    ids = smol_model.tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=True
    )
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    with torch.no_grad():
        hidden = smol_model.hf_model(
            input_ids=torch.as_tensor([ids]), output_hidden_states=True
        ).hidden_states
    for layer in (0, 14, 28):
        np.testing.assert_allclose(
            result.snapshots.states["hidden_out"][9, layer],
            hidden[layer + 1][0, -1].numpy(),
            atol=1e-4,
        )
    assert result.snapshots.states["hidden_out"].shape == (10, 30, 576)
    assert result.layers == tuple(range(30)) and result.scan is None
    folder = result.save(tmp_path / scenario.name)
    assert tw.read_scenario(folder / "scenario.yaml").prompt == scenario.prompt
