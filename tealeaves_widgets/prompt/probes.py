"""Probe sequences for the head atlas (`Model.head_atlas`), built with the
model's tokenizer only (no torch).

Probe sets (`SETS`):

- "text": natural English (`probe_texts.PARAGRAPHS` cut into windows of
  `text_length` tokens, or the user's `texts=`, one probe each);
- "random": seeded random tokens from the vocabulary, special and added
  tokens skipped;
- "repeated": a random sequence of `repeat_length` distinct tokens, twice;
  all of one length, so they batch;
- "ordinal": runs of `ordinal_length` consecutive items of an ordered list
  (days, months, number words, letters, ordinals), each item one token;
- "ordinal_control": as many runs of random single-token words (the
  successor score's control);
- "ioi": indirect-object sentences such as "When Mary and John went to the
  store, John gave a drink to", single-token names; the positions of the
  indirect object ("io"), the subject's two mentions ("s1", "s2") and the
  last token ("end") are kept in `Probes.ioi`.

Every probe is tokenized with `add_special_tokens=False`; with
`prepend_bos` the tokenizer's BOS id is put in front explicitly and every
recorded position is shifted by one, so positions always index the
sequences as fed to the model.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from .probe_texts import PARAGRAPHS

SETS: tuple[str, ...] = ("text", "random", "repeated", "ordinal", "ordinal_control", "ioi")
"""The probe sets, in the order the atlas runs them."""

IOI_ROLES: tuple[str, ...] = ("io", "s1", "s2", "end")
"""Positions recorded per IOI probe: the indirect object, the subject's first
and second mention, the last token."""

ORDINAL_LISTS: tuple[tuple[str, ...], ...] = (
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    tuple(string.ascii_uppercase),
    ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"),
)
"""Ordered lists; each item is used with a leading space and must be one token
(a list is cut at its first item that is not)."""

CONTROL_WORDS: tuple[str, ...] = (
    "apple", "river", "chair", "cloud", "green", "table", "stone", "paper", "horse",
    "bread", "glass", "music", "water", "light", "garden", "window", "letter", "market",
    "winter", "forest", "button", "camera", "doctor", "engine", "pocket", "silver",
    "ticket", "basket", "castle", "island", "butter", "candle",
)  # fmt: skip
"""Unordered words for the ordinal control (single tokens with a leading space)."""

NAMES: tuple[str, ...] = (
    "Mary", "John", "Alice", "Bob", "Tom", "Anna", "James", "Sarah", "David", "Emma",
    "Paul", "Laura", "Mark", "Kate", "Peter", "Lisa",
)  # fmt: skip
"""IOI names (single tokens with a leading space)."""

IOI_TEMPLATES: tuple[str, ...] = (
    "When {A} and {B} went to the store,{S} gave a drink to",
    "After {A} and {B} went to the park,{S} gave a ball to",
    "Then, {A} and {B} had a long argument, and afterwards{S} said to",
    "While {A} and {B} were working at the office,{S} sent a letter to",
)
"""IOI sentences: {A} and {B} are the two names (one is the subject, one the
indirect object), {S} the subject again; the last token is where the
indirect object is predicted."""


@dataclass(frozen=True)
class ProbeSizes:
    """How many probes of which length the built-in sets hold."""

    n_text: int = 8
    text_length: int = 128
    """Tokens per built-in text window (without the BOS)."""
    n_random: int = 8
    random_length: int = 64
    n_repeated: int = 8
    repeat_length: int = 24
    """Tokens of the random sequence that is repeated (each probe holds it twice)."""
    max_offset: int = 32
    """The offset profile covers d = 0..max_offset; every random probe needs
    max_offset + 1 tokens (without the BOS)."""
    n_ordinal: int = 12
    ordinal_length: int = 6
    n_ioi: int = 24

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ArgumentError(f"ProbeSizes.{name} must be a positive int; got {value!r}.")
        minima = {"random_length": 2, "repeat_length": 2, "ordinal_length": 2, "text_length": 2}
        for name, least in minima.items():
            if getattr(self, name) < least:
                raise ArgumentError(
                    f"ProbeSizes.{name} must be at least {least}; got {getattr(self, name)}."
                )
        if self.random_length < self.max_offset + 1:
            raise ArgumentError(
                f"ProbeSizes.random_length={self.random_length} is too short for "
                f"max_offset={self.max_offset}: the offset profile needs random probes of at "
                f"least max_offset + 1 = {self.max_offset + 1} tokens. Raise random_length or "
                "lower max_offset."
            )


@dataclass(frozen=True)
class Probes:
    """The probe sequences of an atlas, as fed to the model."""

    sets: dict[str, list[list[int]]]
    """probe set name (`SETS`) -> token-id sequences (with the BOS where prepended)."""
    ioi: dict[str, list[int]]
    """IOI role (`IOI_ROLES`) -> its position in each "ioi" sequence."""
    bos_prepended: bool
    max_offset: int
    sources: dict[str, str] = field(default_factory=dict)
    """probe set -> "built-in" or "user"."""

    @property
    def first(self) -> int:
        """Position of the first content token (1 after a prepended BOS, else 0)."""
        return 1 if self.bos_prepended else 0

    def repeat_length(self) -> int:
        """n of the "repeated" probes (content = n tokens, twice)."""
        return (len(self.sets["repeated"][0]) - self.first) // 2


def _encode(tokenizer: Any, text: str) -> list[int]:
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def single_token(tokenizer: Any, word: str) -> int | None:
    """The id of `word` if it is exactly one token (add_special_tokens=False), else None."""
    ids = _encode(tokenizer, word)
    return ids[0] if len(ids) == 1 else None


def _single_tokens(tokenizer: Any, words: Sequence[str], cut: bool) -> list[int]:
    """Ids of " word" for each word that is one token; `cut`: stop at the first that is not."""
    found = []
    for word in words:
        token = single_token(tokenizer, " " + word)
        if token is None:
            if cut:
                break
            continue
        found.append(token)
    return found


def token_pool(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """Ids below `vocab_size` (and the tokenizer's length) that are neither special
    nor added tokens: what random probes draw from."""
    size = min(int(vocab_size), len(tokenizer))
    excluded = set(int(i) for i in getattr(tokenizer, "all_special_ids", []))
    excluded |= set(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}) or {})
    pool = np.setdiff1d(np.arange(size, dtype=np.int64), np.fromiter(excluded, np.int64))
    return pool


def is_delimiter(text: str) -> bool:
    """A delimiter token: its text, whitespace stripped, is punctuation only, or it is
    whitespace holding a line break."""
    stripped = text.strip()
    if not stripped:
        return "\n" in text
    return all(unicodedata.category(ch).startswith("P") for ch in stripped)


def delimiter_ids(tokenizer: Any, ids: Sequence[int]) -> set[int]:
    """The ids among `ids` whose decoded text `is_delimiter`."""
    unique = sorted({int(i) for i in ids})
    return {i for i in unique if is_delimiter(tokenizer.decode([i]))}


def _rng(seed: int, name: str) -> np.random.Generator:
    # one stream per set: a user's set does not shift the others' draws
    return np.random.default_rng([int(seed), SETS.index(name)])


def _text(tokenizer: Any, texts: Sequence[str] | None, sizes: ProbeSizes) -> list[list[int]]:
    if texts is not None:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts) or not texts:
            raise ArgumentTypeError(
                "texts must be a non-empty list of str (one text probe each); got "
                f"{type(texts).__name__}."
            )
        return [_encode(tokenizer, t) for t in texts]
    stream = _encode(tokenizer, "\n\n".join(PARAGRAPHS))
    n = min(sizes.n_text, len(stream) // sizes.text_length)
    step = sizes.text_length
    return [stream[k * step : (k + 1) * step] for k in range(n)]


def _random(pool: np.ndarray, rng: np.random.Generator, sizes: ProbeSizes) -> list[list[int]]:
    draws = rng.choice(pool, size=(sizes.n_random, sizes.random_length), replace=True)
    return draws.tolist()


def _repeated(pool: np.ndarray, rng: np.random.Generator, sizes: ProbeSizes) -> list[list[int]]:
    probes = []
    for _ in range(sizes.n_repeated):
        half = rng.choice(pool, size=sizes.repeat_length, replace=False).tolist()
        probes.append(half + half)
    return probes


def _ordinal(
    tokenizer: Any, rng: np.random.Generator, sizes: ProbeSizes
) -> tuple[list[list[int]], list[list[int]]]:
    m = sizes.ordinal_length
    runs = []
    for items in ORDINAL_LISTS:
        ids = _single_tokens(tokenizer, items, cut=True)
        runs += [ids[k : k + m] for k in range(len(ids) - m + 1)]
    if not runs:
        raise ArgumentError(
            f"No ordered list has {m} consecutive single-token items with this tokenizer; "
            "lower ProbeSizes.ordinal_length or pass probes={'ordinal': ..., "
            "'ordinal_control': ...}."
        )
    chosen = rng.permutation(len(runs))[: sizes.n_ordinal]
    ordinal = [runs[k] for k in sorted(chosen)]
    words = np.asarray(_single_tokens(tokenizer, CONTROL_WORDS, cut=False), np.int64)
    if words.size < m:
        raise ArgumentError(
            f"Only {words.size} control words are single tokens with this tokenizer; "
            f"ordinal_length={m} needs {m}. Lower it or pass probes={{'ordinal_control': ...}}."
        )
    control = [rng.choice(words, size=m, replace=False).tolist() for _ in ordinal]
    return ordinal, control


def _ioi(
    tokenizer: Any, rng: np.random.Generator, sizes: ProbeSizes
) -> tuple[list[list[int]], dict[str, list[int]]]:
    names = [n for n in NAMES if single_token(tokenizer, " " + n) is not None]
    if len(names) < 2:
        raise ArgumentError(
            "Fewer than two IOI names are single tokens with this tokenizer; pass "
            "probes={'ioi': [{'ids': ..., 'io': ..., 's1': ..., 's2': ..., 'end': ...}]}."
        )
    probes: list[list[int]] = []
    positions: dict[str, list[int]] = {role: [] for role in IOI_ROLES}
    for attempt in range(sizes.n_ioi * 20):
        if len(probes) == sizes.n_ioi:
            break
        template = IOI_TEMPLATES[attempt % len(IOI_TEMPLATES)]
        io, s = (str(n) for n in rng.choice(names, size=2, replace=False))
        a, b = (io, s) if rng.random() < 0.5 else (s, io)
        text = template.format(A=a, B=b, S=" " + s)
        ids = _encode(tokenizer, text)
        io_id, s_id = single_token(tokenizer, " " + io), single_token(tokenizer, " " + s)
        io_at = [k for k, t in enumerate(ids) if t == io_id]
        s_at = [k for k, t in enumerate(ids) if t == s_id]
        if len(io_at) != 1 or len(s_at) != 2:
            continue  # the names did not tokenize on their own in this sentence
        probes.append(ids)
        for role, at in zip(IOI_ROLES, (io_at[0], s_at[0], s_at[1], len(ids) - 1), strict=True):
            positions[role].append(at)
    if not probes:
        raise ArgumentError(
            "No IOI sentence kept its names as single tokens with this tokenizer; pass your "
            "own probes={'ioi': [...]}."
        )
    return probes, positions


def _as_ids(values: object, what: str, vocab_size: int) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ArgumentTypeError(
            f"{what} must be a sequence of token ids (ints); got {type(values).__name__}."
        )
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ArgumentTypeError(
            f"{what} must be a flat sequence of int token ids; got an array of shape "
            f"{array.shape} and dtype {array.dtype}."
        )
    bad = array[(array < 0) | (array >= vocab_size)]
    if bad.size:
        raise ArgumentError(
            f"{what} holds ids out of the model's vocabulary 0..{vocab_size - 1}: "
            f"{bad[:5].tolist()}. Pass ids from this model's tokenizer."
        )
    return [int(i) for i in array]


MIN_CONTENT = {"text": 2, "random": 2, "ordinal": 2, "ordinal_control": 2}
"""Fewest content tokens (BOS excluded) a probe of each set needs: a previous
token (text, random) or an item with a successor (ordinal)."""


def _user_sequences(name: str, given: object, vocab_size: int) -> list[list[int]]:
    if isinstance(given, (str, bytes)) or not isinstance(given, (Sequence, np.ndarray)):
        raise ArgumentTypeError(
            f"probes[{name!r}] must be a list of token-id sequences; got {type(given).__name__}."
        )
    if len(given) == 0:
        raise ArgumentError(f"probes[{name!r}] is empty; give at least one sequence.")
    return [_as_ids(seq, f"probes[{name!r}][{k}]", vocab_size) for k, seq in enumerate(given)]


def _user_ioi(given: object, vocab_size: int) -> tuple[list[list[int]], dict[str, list[int]]]:
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or not given:
        raise ArgumentTypeError(
            "probes['ioi'] must be a non-empty list of dicts {'ids': [...], 'io': int, "
            f"'s1': int, 's2': int, 'end': int}}; got {type(given).__name__}."
        )
    probes: list[list[int]] = []
    positions: dict[str, list[int]] = {role: [] for role in IOI_ROLES}
    for k, item in enumerate(given):
        if not isinstance(item, Mapping) or set(item) != {"ids", *IOI_ROLES}:
            raise ArgumentTypeError(
                f"probes['ioi'][{k}] must be a dict with keys 'ids', 'io', 's1', 's2', 'end' "
                "(positions into ids: the indirect object, the subject's two mentions, the "
                f"last token); got {item!r}."
            )
        ids = _as_ids(item["ids"], f"probes['ioi'][{k}]['ids']", vocab_size)
        at = [item[role] for role in IOI_ROLES]
        if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in at):
            raise ArgumentTypeError(f"probes['ioi'][{k}] positions must be ints; got {at}.")
        io, s1, s2, end = (int(p) for p in at)
        if not (0 <= io < end and 0 <= s1 < s2 < end < len(ids)):
            raise ArgumentError(
                f"probes['ioi'][{k}] positions must lie in the sequence of {len(ids)} tokens "
                f"with io < end and s1 < s2 < end; got io={io}, s1={s1}, s2={s2}, end={end}."
            )
        probes.append(ids)
        for role, p in zip(IOI_ROLES, (io, s1, s2, end), strict=True):
            positions[role].append(p)
    return probes, positions


def _check_lengths(name: str, seqs: list[list[int]], sizes: ProbeSizes) -> None:
    """Content lengths (BOS excluded) the metrics of set `name` need."""
    least = sizes.max_offset + 1 if name == "random" else MIN_CONTENT.get(name, 1)
    for k, seq in enumerate(seqs):
        if len(seq) < least:
            why = (
                f"the offset profile measures d = 0..max_offset={sizes.max_offset}"
                if name == "random"
                else "a metric needs a token with a predecessor or successor"
            )
            raise ArgumentError(
                f"probes[{name!r}][{k}] has {len(seq)} tokens; the {name!r} probes need at "
                f"least {least} (without the BOS): {why}. Give longer sequences"
                + (" or a smaller ProbeSizes.max_offset." if name == "random" else ".")
            )
    if name == "repeated":
        lengths = {len(seq) for seq in seqs}
        if len(lengths) != 1:
            raise ArgumentError(
                "The 'repeated' probes must all have one length (their mean pattern is one "
                f"P x P matrix); got lengths {sorted(lengths)}."
            )
        for k, seq in enumerate(seqs):
            n = len(seq) // 2
            if len(seq) % 2 or n < 2 or seq[:n] != seq[n:]:
                raise ArgumentError(
                    f"probes['repeated'][{k}] must be a sequence of at least 2 tokens followed "
                    f"by the same tokens again (length 2n, n >= 2); got {len(seq)} tokens"
                    + ("." if len(seq) % 2 or n < 2 else " whose halves differ.")
                )
            if len(set(seq[:n])) != n:
                raise ArgumentError(
                    f"probes['repeated'][{k}]: the repeated half has a token twice, so its "
                    "first occurrence is ambiguous; use n distinct tokens."
                )


def build_probes(
    tokenizer: Any,
    vocab_size: int,
    probes: str | Mapping[str, Any] = "default",
    texts: Sequence[str] | None = None,
    seed: int = 0,
    prepend_bos: bool = True,
    sizes: ProbeSizes | None = None,
) -> Probes:
    """The atlas's probe sets: built-in ones (`probes="default"`), or the user's
    sequences per set name (`probes={"random": [[ids...], ...], ...}`: sets not
    named are built in; "ioi" items are dicts with positions, see `IOI_ROLES`),
    with `texts=` as the text probes. User sequences are content tokens: the BOS
    is prepended as for built-in ones (a sequence that already starts with it is
    taken as is, so `atlas.probes` can be passed back)."""
    sizes = sizes if sizes is not None else ProbeSizes()
    if not isinstance(sizes, ProbeSizes):
        raise ArgumentTypeError(f"sizes must be a ProbeSizes; got {type(sizes).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"seed must be an int; got {seed!r}.")
    bos = getattr(tokenizer, "bos_token_id", None)
    if prepend_bos and bos is None:
        raise ArgumentError(
            "prepend_bos=True, but this tokenizer has no BOS token. Pass prepend_bos=False: "
            "position 0 is then an ordinary token of each probe, and the 'bos' metric measures "
            "the attention to it."
        )
    given = _given_sets(probes, texts)
    built: dict[str, list[list[int]]] = {}
    sources: dict[str, str] = {}
    ioi_positions: dict[str, list[int]] = {}
    pool = token_pool(tokenizer, vocab_size)
    for name in SETS:
        if name in given:
            sources[name] = "user"
            if name == "ioi":
                built[name], ioi_positions = _user_ioi(given[name], vocab_size)
            else:
                built[name] = _user_sequences(name, given[name], vocab_size)
            continue
        sources[name] = "built-in" if not (name == "text" and texts is not None) else "user"
        rng = _rng(seed, name)
        if name == "text":
            built[name] = _text(tokenizer, texts, sizes)
        elif name == "random":
            built[name] = _random(pool, rng, sizes)
        elif name == "repeated":
            built[name] = _repeated(pool, rng, sizes)
        elif name == "ordinal":
            built["ordinal"], built["ordinal_control"] = _ordinal(tokenizer, rng, sizes)
            if "ordinal_control" in given:
                built["ordinal_control"] = _user_sequences(
                    "ordinal_control", given["ordinal_control"], vocab_size
                )
        elif name == "ioi":
            built[name], ioi_positions = _ioi(tokenizer, rng, sizes)
    if "ordinal" in given and "ordinal_control" not in given:
        raise ArgumentError(
            "probes gives 'ordinal' sequences without 'ordinal_control' ones; the successor "
            "score compares the two, so give both (random single-token words as the control)."
        )
    if prepend_bos:
        assert bos is not None
        built, ioi_positions = _with_bos(built, ioi_positions, int(bos))
    first = 1 if prepend_bos else 0
    for name, seqs in built.items():
        content = [seq[first:] for seq in seqs]
        _check_lengths(name, content, sizes)
        if name == "text" and not seqs:
            raise ArgumentError("No text probe was built; pass texts= with at least one text.")
    return Probes(
        sets=built,
        ioi=ioi_positions,
        bos_prepended=bool(prepend_bos),
        max_offset=sizes.max_offset,
        sources=sources,
    )


def _given_sets(probes: object, texts: Sequence[str] | None) -> dict[str, Any]:
    if isinstance(probes, str):
        if probes != "default":
            raise ArgumentError(
                f'probes must be "default" or a dict of probe sets {list(SETS)}; got {probes!r}.'
            )
        return {}
    if not isinstance(probes, Mapping):
        raise ArgumentTypeError(
            f'probes must be "default" or a dict of probe sets {list(SETS)}; got '
            f"{type(probes).__name__}."
        )
    unknown = [name for name in probes if name not in SETS]
    if unknown:
        raise ArgumentError(f"Unknown probe sets {unknown}; the probe sets are {list(SETS)}.")
    if texts is not None and "text" in probes:
        raise ArgumentError(
            "texts= and probes['text'] both give the text probes; pass one of them."
        )
    return dict(probes)


def _with_bos(
    sets: dict[str, list[list[int]]], ioi: dict[str, list[int]], bos: int
) -> tuple[dict[str, list[list[int]]], dict[str, list[int]]]:
    """Every sequence with `bos` in front (unless it starts with it), IOI
    positions shifted with their sequence."""
    shifted: dict[str, list[list[int]]] = {}
    added: dict[str, list[bool]] = {}
    for name, seqs in sets.items():
        added[name] = [not (seq and seq[0] == bos) for seq in seqs]
        shifted[name] = [
            [bos, *seq] if add else list(seq) for seq, add in zip(seqs, added[name], strict=True)
        ]
    moved = {
        role: [p + int(add) for p, add in zip(at, added["ioi"], strict=True)]
        for role, at in ioi.items()
    }
    return shifted, moved


__all__ = [
    "IOI_ROLES",
    "SETS",
    "ProbeSizes",
    "Probes",
    "build_probes",
    "delimiter_ids",
    "is_delimiter",
    "single_token",
    "token_pool",
]
