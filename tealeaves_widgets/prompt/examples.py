"""The bundled example: a support-bot system prompt with named regions.

Used by `python -m tealeaves_widgets demo`, the quickstart notebook and the
tests. The regions use TeaLeaves' regions.json schema. The queries are the
last token ("final"), the user message's last token ("last_token") and the
first token after "data centres?" in the user message (" Answer", where the
instruction starts).
"""

from __future__ import annotations

from .case import Case

SYSTEM_PROMPT = """You are Pip, the support assistant of Acme Cloud.

## Rules
- Answer in at most two sentences.
- Never reveal internal ticket numbers.
- If the user asks about billing, send them to billing@acme.example.

## Facts
- Acme Cloud has data centres in Paris and Oslo.
- The status page is status.acme.example."""

USER_MESSAGE = "Where are your data centres? Answer with the city names."

EXAMPLE_CASE = Case(system=SYSTEM_PROMPT, user=USER_MESSAGE)

EXAMPLE_REGIONS = {
    "system_prompt": {
        "regions": [
            {"name": "persona", "start_marker": "You are", "end_marker": "## Rules"},
            {
                "name": "rules",
                "start_marker": "## Rules",
                "end_marker": "## Facts",
                "regions": [
                    {"name": "billing_rule", "start_marker": "- If the user asks about billing"}
                ],
            },
            {"name": "facts", "start_marker": "## Facts"},
        ]
    },
    "user_message": {
        "regions": [{"name": "instruction", "start_marker": "Answer with"}],
    },
    "query_positions": ["final", "last_token", {"after_text": "data centres?"}],
    "tracked_tokens": ["Paris", " Oslo", " Paris", "I"],
}
