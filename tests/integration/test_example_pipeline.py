"""examples/support_bot through the batch pipeline: the shipped inputs prep
cleanly, and runs captured by the command line equal the notebook's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tealeaves_widgets as tw
from tealeaves_widgets import batch
from tealeaves_widgets.__main__ import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_bot"
VARIANTS = ("baseline", "reworded")


def _inputs(variant: str) -> batch.PrepInputs:
    return batch.PrepInputs.in_folder(
        EXAMPLE, system_prompt=EXAMPLE / variant / "system_prompt.txt"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_example_inputs_prep_cleanly(variant, smol_tokenizer):
    cases = batch.prep(_inputs(variant), smol_tokenizer)
    assert [c.id for c in cases.cases] == [
        "where", "hours", "refund", "ticket", "weekend", "europe", "unknown", "greeting",
    ]  # fmt: skip
    greeting = cases.cases[-1]
    assert {r.name for r in greeting.regions.user} == {"greeting", "question"}


@pytest.mark.slow
def test_command_line_runs_equal_the_notebooks(tmp_path, smol_model):
    runs = {}
    for variant in VARIANTS:
        cases = tmp_path / f"{variant}.json"
        inputs = ["--prompt", str(EXAMPLE / variant / "system_prompt.txt")]
        assert main(["prep", str(EXAMPLE), *inputs, "-o", str(cases)]) == 0
        out = tmp_path / "runs" / variant
        assert main(["capture", str(cases), "--out", str(out), "--no-progress"]) == 0
        runs[variant] = tw.open_runs(out)

    # the notebook's way: model.capture of each case with its own region spec
    for variant in VARIANTS:
        prepared = batch.read_cases(tmp_path / f"{variant}.json")
        assert [run.case["name"] for run in runs[variant]] == [c.id for c in prepared.cases]
        for item, run in zip(prepared.cases, runs[variant], strict=True):
            direct = smol_model.capture(item.case, item.regions, progress=False)
            assert run.tokens == direct.tokens and run.queries == direct.queries
            assert list(run.regions) == list(direct.regions)
            for name, info in run.regions.items():
                np.testing.assert_array_equal(
                    info.token_indices, direct.regions[name].token_indices
                )
            np.testing.assert_allclose(run.attention_heads, direct.attention_heads, atol=1e-5)
            np.testing.assert_allclose(run.lens.top_probs, direct.lens.top_probs, atol=1e-5)

    report = tmp_path / "report.html"
    pairs = [f"{v}={tmp_path / 'runs' / v}" for v in VARIANTS]
    assert main(["report", *pairs, "-o", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    assert "persona" in page and "reworded" in page
