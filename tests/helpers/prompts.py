"""Cases and specs shared by the prompt tests and the tests that capture them."""

from __future__ import annotations

from tealeaves_widgets.prompt.case import Case

GRADER = Case(
    system="Reply positive, negative or mixed.",
    user="What is the capital of Australia?",
    response="La capitale est Canberra negative",
)
"""The issue's example: a sentiment label at the end of a French answer, with
"negative" in the system prompt too."""

TEALEAVES_QUERIES = {"terminal": "last_token", "decision": {"after_text": "capitale"}, "end": -1}
"""TeaLeaves' named query object: a named position, a named text query, an index."""
