"""Property-based fuzzing (Hypothesis): whatever a user or a damaged file
hands the package, the answer is a valid result or a `TealeavesError`
subclass, never another exception, never a hang, and never a file written
outside the folder asked for.

Inputs: random region dicts and RegionSpecs, unicode prompts (rendered with
the real ChatML tokenizer), query specs, tracked tokens, run-file mutations
(bytes flipped, truncated, extended, metadata edited and re-signed),
run-directory indexes and cases files, and labels that try to escape their
folder.

CI runs a bounded number of examples (profile "ci", about 20 s); set
TEALEAVES_FUZZ=thorough for 20x more, or TEALEAVES_FUZZ_SEED to replay.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tealeaves_widgets as tw
from tealeaves_widgets.errors import TealeavesError
from tealeaves_widgets.io import rundir, runfile
from tealeaves_widgets.prompt.render import render_case
from tealeaves_widgets.prompt.resolve import resolve_queries, resolve_regions
from tests.helpers import golden

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=800,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("TEALEAVES_FUZZ", "ci"))

pytestmark = pytest.mark.filterwarnings("ignore:Tracked token .* is \\d+ tokens:UserWarning")

HANG_SECONDS = 10
"""An example that runs longer than this is a hang (the per-example deadline
reports slow ones; this stops the ones that would never return)."""


class Hang(Exception):
    """An example ran past HANG_SECONDS."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Raise `Hang` inside the block after `seconds` (SIGALRM; main thread)."""

    def alarm(_signum, _frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def valid_or_tealeaves_error(fn, *args, **kwargs):
    """`fn(...)`'s result, None when it raised a TealeavesError; any other
    exception (or a hang) fails the example."""
    with no_hang():
        try:
            return fn(*args, **kwargs)
        except TealeavesError:
            return None


# -- strategies -------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x1F9FF),
    max_size=40,
)
"""Unicode text, emoji and CJK included, no lone surrogates (a separate test)."""
MARKUP = st.sampled_from(
    ["<b>", "</script>", "&amp;", "*x*", "`", "|", "\n", "## ", "\\", "'", '"']
)
NEEDLE = st.one_of(
    TEXT, MARKUP, st.sampled_from(["## Rules", "Be", "a", " ", "(a+)+$", "[", "\\d+"])
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["name", "x", "regions"]), inner, max_size=3),
    ),
    max_leaves=12,
)

LOCATOR_KEYS = (
    "start_marker", "end_marker", "start_pattern", "end_pattern",
    "start_char", "end_char", "marker", "pattern",
)  # fmt: skip


@st.composite
def region_dict(draw, depth: int = 0):
    region: dict = {
        "name": draw(st.one_of(st.sampled_from(["rules", "facts", "x", "system", ""]), TEXT))
    }
    for key in draw(st.lists(st.sampled_from(LOCATOR_KEYS), max_size=3, unique=True)):
        region[key] = draw(st.integers(-3, 80)) if key.endswith("char") else draw(NEEDLE)
    if draw(st.booleans()):
        region["include_end"] = draw(st.one_of(st.booleans(), JSONISH))
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        region["regions"] = draw(st.lists(region_dict(depth + 1), max_size=2))
    if draw(st.integers(0, 9)) == 0:
        region[draw(st.sampled_from(["bogus", "colour", "regions"]))] = draw(JSONISH)
    return region


QUERY = st.one_of(
    st.sampled_from(["final", "last_token", "first", ""]),
    st.integers(-300, 300),
    st.builds(dict, after_text=NEEDLE),
    st.builds(dict, at_text=NEEDLE, occurrence=st.integers(-3, 3)),
    st.dictionaries(
        st.sampled_from(["at_text", "after_text", "name", "occurrence", "section"]),
        JSONISH,
        max_size=3,
    ),
    JSONISH,
)
TRACKED = st.one_of(
    st.lists(st.one_of(TEXT, st.integers(-10, 60000)), max_size=4),
    TEXT,
    JSONISH,
)


@st.composite
def spec_dict(draw):
    spec: dict = {}
    for key in ("system_prompt", "user_message", "response"):
        if draw(st.booleans()):
            spec[key] = {"regions": draw(st.lists(region_dict(), max_size=3))}
    if draw(st.booleans()):
        spec["query_positions"] = draw(
            st.one_of(st.lists(QUERY, max_size=3), st.dictionaries(TEXT, QUERY, max_size=2), QUERY)
        )
    if draw(st.booleans()):
        spec["tracked_tokens"] = draw(TRACKED)
    if draw(st.integers(0, 9)) == 0:
        spec[draw(TEXT)] = draw(JSONISH)
    return spec


SYSTEM = "You grade answers.\n## Rules\nBe strict. Never guess.\n## Facts\nParis is in France."


@st.composite
def case(draw):
    system = draw(st.one_of(st.just(SYSTEM), TEXT, st.none()))
    user = draw(st.one_of(st.just("Is 2+2 four? Answer:"), TEXT))
    response = draw(st.one_of(st.none(), st.just("Yes, because"), TEXT))
    return tw.Case(system=system, user=user, response=response)


# -- prompts, regions, queries ----------------------------------------------------------


@given(spec=spec_dict())
def test_region_specs_are_built_or_refused(spec):
    built = valid_or_tealeaves_error(tw.RegionSpec.from_dict, spec)
    if built is not None:
        assert tw.RegionSpec.from_dict(built.to_dict()) == built  # the schema round-trips


@given(case=case(), spec=spec_dict())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_regions_resolve_or_are_refused_on_any_prompt(smol_tokenizer, case, spec):
    prompt = valid_or_tealeaves_error(render_case, case, smol_tokenizer)
    assume(prompt is not None)
    resolved = valid_or_tealeaves_error(resolve_regions, prompt, spec)
    if resolved is None:
        return
    n = len(prompt.tokens)
    for info in resolved.regions.values():
        assert np.all((info.token_indices >= 0) & (info.token_indices < n))
        assert np.all(np.diff(info.token_indices) > 0)
    assert all(0 <= pos < n for pos in resolved.queries.values())
    template = set(resolved.regions["template"].token_indices.tolist())
    sections = [r for r in resolved.regions.values() if r.builtin and r.name != "template"]
    owned = set().union(*(set(r.token_indices.tolist()) for r in sections)) if sections else set()
    assert not template & owned and template | owned == set(range(n))  # a partition


@given(case=case(), queries=st.lists(QUERY, max_size=4))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_queries_land_on_a_token_or_are_refused(smol_tokenizer, case, queries):
    prompt = valid_or_tealeaves_error(render_case, case, smol_tokenizer)
    assume(prompt is not None)
    found = valid_or_tealeaves_error(resolve_queries, prompt, queries)
    if found is not None:
        assert all(0 <= pos < len(prompt.tokens) for pos in found.values())
        assert len(found) == max(1, len(queries))


@given(
    fields=st.dictionaries(
        st.sampled_from(["system", "user", "response", "messages", "name", "extra"]),
        st.one_of(
            TEXT,
            JSONISH,
            st.lists(
                st.dictionaries(st.sampled_from(["role", "content"]), st.one_of(TEXT, JSONISH)),
                max_size=3,
            ),
        ),
        max_size=4,
    )
)
def test_cases_are_built_or_refused(fields):
    built = valid_or_tealeaves_error(tw.Case.from_dict, fields)
    if built is not None:
        assert tw.Case.from_dict(built.to_dict()) == built


@given(
    text=st.text(
        alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
    )
)
def test_a_lone_surrogate_is_refused_clearly(smol_tokenizer, text):
    with pytest.raises(TealeavesError):
        render_case(tw.Case(user="Hi " + text), smol_tokenizer)


@given(tracked=TRACKED)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_tracked_tokens_are_ids_or_refused(smol_tokenizer, tracked):
    from tealeaves_widgets.prompt.resolve import tracked_token_ids

    spec = valid_or_tealeaves_error(tw.RegionSpec.from_dict, {"tracked_tokens": tracked})
    assume(spec is not None)
    ids = valid_or_tealeaves_error(tracked_token_ids, spec.tracked_tokens, smol_tokenizer)
    if ids is not None:
        assert len(ids[0]) == len(ids[1]) == len(spec.tracked_tokens)
        assert len(set(ids[1])) == len(ids[1])  # labels are unique: tables index by them


# -- files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    run = golden.golden_run(golden.BASE_TOKENS)
    path = tmp_path_factory.mktemp("fuzz") / "run.tlrun"
    run.save(path)
    return run, path.read_bytes()


@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_run_file_opens_whole_or_is_refused(saved_run, tmp_path_factory, data):
    run, original = saved_run
    damaged = bytearray(original)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "header"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        damaged = damaged[: data.draw(st.integers(0, len(damaged) - 1))]
    elif kind == "extend":
        damaged += data.draw(st.binary(min_size=1, max_size=64))
    else:
        size = int.from_bytes(damaged[:8], "little")
        damaged[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
        assume(int.from_bytes(damaged[:8], "little") != size)
    path = tmp_path_factory.mktemp("damaged") / "run.tlrun"
    path.write_bytes(bytes(damaged))
    opened = valid_or_tealeaves_error(tw.open_run, path)
    if opened is not None:  # only a change the checksum cannot see: none of ours
        assert opened.text == run.text and np.array_equal(opened.attention, run.attention)


@given(
    edit=st.sampled_from(
        ["text", "tokens", "regions", "queries", "vocab", "tracked_tokens", "case"]
    ),
    value=JSONISH,
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_edited_and_resigned_metadata_opens_as_a_valid_run_or_is_refused(
    saved_run, tmp_path_factory, edit, value
):
    """A file whose metadata was changed and its checksum recomputed (what a
    careless tool or an attacker writes): either a run whose every invariant
    holds, or a RunFileError."""
    import safetensors.numpy

    _, original = saved_run
    arrays = safetensors.numpy.load(original)
    size = int.from_bytes(original[:8], "little")
    fields = json.loads(json.loads(original[8 : 8 + size])["__metadata__"][runfile.METADATA_KEY])
    fields[edit] = value
    fields["sha256"] = runfile._digest(arrays, fields)
    data = safetensors.numpy.save(arrays, metadata={runfile.METADATA_KEY: json.dumps(fields)})
    path = tmp_path_factory.mktemp("edited") / "run.tlrun"
    path.write_bytes(data)
    opened = valid_or_tealeaves_error(tw.open_run, path)
    if opened is None:
        return
    # a run that opens is usable: its tables answer
    with no_hang():
        opened.curves()
        opened.lens_table()
        repr(opened)


@given(
    index=st.dictionaries(
        st.sampled_from(["format", "format_version", "runs", "pending", "x"]), JSONISH, max_size=5
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_run_index_is_read_or_refused(tmp_path_factory, index):
    directory = tmp_path_factory.mktemp("runs")
    index.setdefault("format", "tealeaves-runs")
    (directory / "index.json").write_text(json.dumps(index), encoding="utf-8")
    valid_or_tealeaves_error(rundir.read_index, directory)
    valid_or_tealeaves_error(tw.open_runs, directory)


@given(
    document=st.one_of(
        JSONISH,
        st.dictionaries(
            st.sampled_from(["format", "format_version", "regions", "cases", "prepared_with"]),
            JSONISH,
        ),
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_cases_file_is_read_or_refused(tmp_path_factory, document):
    from tealeaves_widgets.batch.cases import read_cases

    if isinstance(document, dict):
        document.setdefault("format", "tealeaves-cases")
        document.setdefault("format_version", 1)
    path = tmp_path_factory.mktemp("cases") / "cases.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    valid_or_tealeaves_error(read_cases, path)


@pytest.mark.parametrize("name", ["regions", "cases file", "run index"])
def test_json_nested_beyond_any_limit_is_refused(tmp_path, name):
    deep = "[" * 100_000 + "]" * 100_000
    if name == "regions":
        path = tmp_path / "regions.json"
        path.write_text(deep, encoding="utf-8")
        with pytest.raises(TealeavesError):
            tw.load_regions(path)
    elif name == "cases file":
        from tealeaves_widgets.batch.cases import read_cases

        path = tmp_path / "cases.json"
        path.write_text(deep, encoding="utf-8")
        with pytest.raises(TealeavesError):
            read_cases(path)
    else:
        (tmp_path / "index.json").write_text(deep, encoding="utf-8")
        with pytest.raises(TealeavesError):
            tw.open_runs(tmp_path)


ESCAPES = st.sampled_from(
    ["../", "..", "/", "\\", "..\\", "/etc/passwd", "~", ".", "\x00", "a/../../b"]
)


@given(
    labels=st.lists(
        st.one_of(TEXT, st.builds(lambda a, b: a + b, ESCAPES, TEXT)),
        min_size=1,
        max_size=3,
        unique=True,
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
def test_saving_runs_writes_inside_the_folder_only(tmp_path_factory, labels):
    root = tmp_path_factory.mktemp("save")
    folder = root / "runs"
    run = golden.golden_run(golden.BASE_TOKENS)
    runs = tw.RunSet(tuple(run for _ in labels), tuple(labels), (None,) * len(labels))
    written = valid_or_tealeaves_error(runs.save, folder)
    outside = [p for p in root.rglob("*") if folder not in p.parents and p != folder]
    assert outside == [], outside
    if written is not None:
        assert all(p.parent == folder for p in folder.iterdir())
        assert len(tw.open_runs(folder)) == len(labels)


@given(label=st.one_of(TEXT, st.builds(lambda a, b: a + b, ESCAPES, TEXT)))
def test_run_file_names_are_plain_names(label):
    name = rundir.run_file_name(3, label)
    assert name == Path(name).name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name.endswith(".tlrun")
    assert set(name) <= set(string.ascii_letters + string.digits + "._-")
