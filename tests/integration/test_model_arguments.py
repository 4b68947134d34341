"""`Model.capture` and friends refuse arguments they cannot use before any work
(no forward pass, no sampling), with ArgumentTypeError for a wrong type and
ArgumentError for a wrong value."""

from __future__ import annotations

import numpy as np
import pytest

import tealeaves_widgets as tw
from tests.helpers.tiny_models import make_tiny_model

CASE = tw.Case(system="You are Pip. " * 20, user="Where are your data centres? Q: where?")


@pytest.fixture(scope="module")
def model(smol_tokenizer):
    return tw.load_model(make_tiny_model("llama"), tokenizer=smol_tokenizer)


@pytest.fixture()
def no_work(model, monkeypatch):
    """Fail the test if a forward pass runs or a response is sampled."""

    def forbidden(*args, **kwargs):
        raise AssertionError("worked before checking the arguments")

    monkeypatch.setattr(model, "_forward", forbidden)
    monkeypatch.setattr(model, "sample_response", forbidden)
    return model


BAD_CALLS = {
    "top_k=-1": (lambda m: m.capture(CASE, top_k=-1), tw.ArgumentError, "top_k must be at least 1"),
    "top_k=0": (lambda m: m.capture(CASE, top_k=0), tw.ArgumentError, "got 0"),
    "top_k=None": (lambda m: m.capture(CASE, top_k=None), tw.ArgumentTypeError, "got None"),
    "top_k=1.5": (lambda m: m.capture(CASE, top_k=1.5), tw.ArgumentTypeError, "got 1.5"),
    "top_k=True": (lambda m: m.capture(CASE, top_k=True), tw.ArgumentTypeError, "got True"),
    "top_k='3'": (lambda m: m.capture(CASE, top_k="3"), tw.ArgumentTypeError, "got '3'"),
    "case None": (lambda m: m.capture(None), tw.ArgumentTypeError, "got NoneType"),
    "case 5": (lambda m: m.capture(5), tw.ArgumentTypeError, "tw.Case"),
    "on_layer": (lambda m: m.capture(CASE, on_layer=5), tw.ArgumentTypeError, "on_layer"),
    "progress": (lambda m: m.capture(CASE, progress="yes"), tw.ArgumentTypeError, "progress"),
    "many top_k=0": (
        lambda m: m.capture_many([CASE, CASE], top_k=0, generate=tw.Generate(seeds=(0,))),
        tw.ArgumentError,
        "top_k must be at least 1",
    ),
    "many top_k=None": (
        lambda m: m.capture_many([CASE], top_k=None),
        tw.ArgumentTypeError,
        "top_k must be a whole number",
    ),
    "many batch_tokens=1.5": (
        lambda m: m.capture_many([CASE], batch_tokens=1.5, generate=tw.Generate(seeds=(0,))),
        tw.ArgumentTypeError,
        "batch_tokens",
    ),
    "many batch_tokens=0": (
        lambda m: m.capture_many([CASE], batch_tokens=0, generate=tw.Generate(seeds=(0,))),
        tw.ArgumentError,
        "batch_tokens must be at least 1",
    ),
    "many progress=None": (
        lambda m: m.capture_many([CASE], progress=None),
        tw.ArgumentTypeError,
        "progress must be True or False",
    ),
    "many None": (lambda m: m.capture_many(None), tw.ArgumentTypeError, "list of cases"),
    "many []": (lambda m: m.capture_many([]), tw.ArgumentError, "empty"),
    "many [None]": (lambda m: m.capture_many([CASE, None]), tw.ArgumentTypeError, "cases[1]"),
    "comparison top_k=-1": (
        lambda m: m.capture_comparison({"a": CASE, "b": CASE}, top_k=-1),
        tw.ArgumentError,
        "top_k must be at least 1",
    ),
    "comparison batch_tokens=-1": (
        lambda m: m.capture_comparison({"a": CASE, "b": CASE}, batch_tokens=-1),
        tw.ArgumentError,
        "batch_tokens",
    ),
    "sample seed=None": (
        lambda m: type(m).sample_response(m, CASE, seed=None),
        tw.ArgumentTypeError,
        "seed must be an int",
    ),
    "sample options=5": (
        lambda m: type(m).sample_response(m, CASE, 0, options=5),
        tw.ArgumentTypeError,
        "tw.Generate",
    ),
}


@pytest.mark.parametrize("call, error, says", BAD_CALLS.values(), ids=BAD_CALLS)
def test_bad_arguments_are_refused_before_any_work(no_work, call, error, says):
    with pytest.raises(error) as caught:
        call(no_work)
    assert type(caught.value) is error  # ArgumentTypeError for types, ArgumentError for values
    assert says in str(caught.value)


def test_numpy_ints_are_whole_numbers(model):
    run = model.capture(CASE, top_k=np.int64(3), progress=False)
    assert run.lens.top_ids.shape[-1] == 3
    runs = model.capture_many([CASE], top_k=np.int32(2), batch_tokens=np.int64(512), progress=False)
    assert runs[0].lens.top_ids.shape[-1] == 2
