"""The markdown report renders every user string as literal text: rendered by
markdown-it-py and by mistune (raw HTML allowed, tables, strikethrough, bare-URL
links and math switched on), a report whose variant names, region names,
model id, tracked tokens, query names and phase names are all markup has the
same elements as one with plain names, none with an attribute, and shows each
string as the user wrote it."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import mistune
import pytest
from markdown_it import MarkdownIt

import tealeaves_widgets as tw
from tests.helpers.fake_runs import fake_run, regions_of, variant_words

MARKUP = {
    "baseline": "<img src=x onerror=alert(1)> http://e.example/b",
    "variant": "[a](javascript:alert(1)) *x* _y_ ~~z~~",
    "rules": "<script>alert(2)</script>",
    "facts": "a|b `c` ``d",
    "persona": "**b** &lt;b&gt; &amp; \\<i>",
    "only_base": "line\nbreak <!-- x",
    "model": "<b>m</b> https://evil.example/x www.evil.example <https://e.example>",
    "final": "<u>q</u>",
    "last": "$x$ ![i](http://e.example/i.png) [^1]",
    "token1": "<i>t</i>",
    "token2": "`tick`|",
    "phase1": "<em>p</em> # h ##",
    "phase2": "- [ ] x > y",
}
PLAIN = {key: f"plain{i}" for i, key in enumerate(MARKUP)}


def comparison(names: dict[str, str]) -> tw.Comparison:
    """Two variants whose every user string is taken from `names`."""
    words = variant_words(False)
    spans = regions_of(words)
    regions = {names[key]: span for key, span in spans.items()}
    queries = (names["final"], names["last"])
    tracked = (names["token1"], names["token2"])

    def run(seed: int, regions: dict) -> tw.Run:
        made = fake_run(words, regions, queries=queries, seed=seed)
        return dataclasses.replace(
            made,
            lens=dataclasses.replace(made.lens, tracked_tokens=tracked),
            model_info={**made.model_info, "model_id": names["model"]},
        )

    base = run(0, regions | {names["only_base"]: (1, 3)})
    other = run(1, regions)
    layers = {names["phase1"]: (0, 3), names["phase2"]: (3, 6)}
    return tw.compare({names["baseline"]: base, names["variant"]: other}, layers=layers)


RENDERERS = {
    "markdown-it-py": MarkdownIt("commonmark", {"html": True})
    .enable(["table", "strikethrough"])
    .render,
    "mistune": mistune.create_markdown(
        escape=False, plugins=["table", "strikethrough", "url", "math", "footnotes"]
    ),
}


class _Page(HTMLParser):
    """Start tags with their attributes, table rows as cell texts, and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def shown(value: str) -> str:
    """How the report shows a string: line breaks as the two characters \\n."""
    return value.replace("\n", "\\n")


@pytest.fixture(scope="module")
def reports() -> tuple[str, str]:
    return comparison(MARKUP).report(), comparison(PLAIN).report()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_markup_in_user_strings_makes_no_element(reports, renderer):
    render = RENDERERS[renderer]
    marked, plain = (parse(render(text)) for text in reports)
    # `code` left out: a code span holding a pipe in a table is written as plain text
    structure = [tag for tag, _ in plain.tags if tag != "code"]
    assert [tag for tag, _ in marked.tags if tag != "code"] == structure
    assert {tag for tag, _ in marked.tags} <= {tag for tag, _ in plain.tags}
    assert [(tag, attrs) for tag, attrs in marked.tags if attrs] == []
    # every table row keeps its cells: no pipe of a name split one
    for rows in (marked.rows, plain.rows):
        assert rows and all(len(row) in (4, 5, 3) for row in rows)
    assert [len(row) for row in marked.rows] == [len(row) for row in plain.rows]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_user_strings_show_literally(reports, renderer):
    page = parse(RENDERERS[renderer](reports[0]))
    text = "".join(page.text)
    for key, value in MARKUP.items():
        expected = repr(value) if key.startswith("token") else shown(value)
        assert expected in text, (key, expected)
    base, variant = MARKUP["baseline"], MARKUP["variant"]
    summary = next(row for row in page.rows if row[0] == "region")
    assert summary == ["region", "layers", base, f"{variant} Δ"]
    phases = {row[1] for row in page.rows if len(row) == 4 and row[0] != "region"}
    assert phases == {MARKUP["phase1"], MARKUP["phase2"]}
    tokens = {row[0] for row in page.rows if len(row) == 3 and row[0] != "token"}
    assert tokens == {repr(MARKUP["token1"]), repr(MARKUP["token2"])}


def test_plain_names_stay_readable_in_the_markdown(reports):
    text = reports[1]
    assert "- Model: plain6 (6 layers)" in text
    assert "| region | layers | plain0 | plain1 Δ |" in text
    assert "normalize=`share`" in text  # tw.compare's default
    assert "- Excluded: first token (masses are fractions of the rest of the attention" in text
