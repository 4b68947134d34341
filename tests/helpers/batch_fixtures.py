"""Inputs for the batch tests: TeaLeaves' three files and a tiny model folder."""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM_PROMPT = """You are Pip, a support assistant.

## Rules
- Be brief.
- Never guess.

## Facts
- Our data centres are in Paris.
- Support hours are 9 to 5.
"""

REGIONS = {
    "system_prompt": {
        "regions": [
            {"name": "rules", "start_marker": "## Rules", "end_marker": "## Facts"},
            {"name": "facts", "start_marker": "## Facts"},
        ]
    },
    "user_message": {"regions": [{"name": "question", "start_marker": "Q:"}]},
    # TeaLeaves' {name: query} form
    "query_positions": {"end": "final", "asked": {"after_text": "Q:"}},
    "tracked_tokens": [" Paris"],
}


def conversations(n: int = 16) -> list[dict]:
    """`n` conversations of different lengths; case c03 overrides the user regions."""
    out = [
        {
            "id": f"c{i:02d}",
            "user_message": f"Hello {i}. " + "Please. " * (i % 5) + f"Q: where is centre {i}?",
            "response": "",
        }
        for i in range(n)
    ]
    if n > 3:
        out[3]["user_regions"] = [{"name": "greeting", "start_marker": "Hello", "end_marker": "Q:"}]
    return out


def write_inputs(
    folder: Path, convs: list[dict] | None = None, regions: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "system_prompt.txt").write_text(SYSTEM_PROMPT, encoding="utf-8")
    (folder / "regions.json").write_text(json.dumps(regions or REGIONS), encoding="utf-8")
    convs = conversations() if convs is None else convs
    (folder / "conversations.json").write_text(json.dumps(convs), encoding="utf-8")
    return folder


def write_tiny_model(folder: Path, model_type: str = "llama") -> Path:
    """A tiny random model and the SmolLM2 tokenizer (ChatML template), saved
    with save_pretrained so that `--model folder` loads it like any checkpoint."""
    from tealeaves_widgets.models.loading import load_embedded_tokenizer
    from tests.helpers.tiny_models import make_tiny_model

    make_tiny_model(model_type).save_pretrained(folder)
    load_embedded_tokenizer().save_pretrained(folder)
    return folder
