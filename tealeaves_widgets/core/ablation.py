"""What an ablation did to the prediction: `Ablation`, the result of
`Model.ablate`, and the logit-change arithmetic behind it (numpy only).

Per condition, at the query position t, against the unablated pass:

- `predicted`: the token the model now puts first, and its probability;
- `delta_base_top`: the change of the logit of the baseline's top token
  (Δ = condition − baseline);
- `delta_logprob`: the change of that token's log-probability;
- `delta_centered`: Δ of that token minus the mean Δ over the vocabulary.
  A raw logit change carries a shift that is the same for every token and
  that softmax ignores; the centred one does not;
- `kl`: KL(baseline ‖ condition) of the next-token distributions, in nats;
- the k tokens whose logit rose most and fell most (`changes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import SelectionError
from . import seam
from .conditions import Condition
from .run import Run


def log_softmax(logits: NDArray) -> NDArray[np.float64]:
    """log-softmax over the last axis, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class LogitChanges:
    """The logit-change arithmetic of conditions against a baseline."""

    predicted: NDArray[np.int64]
    """(condition,) the top token under each condition."""
    predicted_prob: NDArray[np.float64]
    base_top: int
    """The baseline's top token."""
    delta_base_top: NDArray[np.float64]
    delta_logprob: NDArray[np.float64]
    delta_centered: NDArray[np.float64]
    kl: NDArray[np.float64]
    rose: NDArray[np.int64]
    """(condition, k) tokens whose logit rose most, largest first."""
    fell: NDArray[np.int64]
    """(condition, k) tokens whose logit fell most, most negative first."""
    delta: NDArray[np.float64]
    """(condition, vocab) Δ logits."""

    @property
    def token_ids(self) -> set[int]:
        """Every token id the tables name."""
        ids = {self.base_top, *self.predicted.tolist()}
        return ids | set(self.rose.ravel().tolist()) | set(self.fell.ravel().tolist())


def logit_changes(base: NDArray, logits: NDArray, k: int) -> LogitChanges:
    """`base` (vocab,) and `logits` (condition, vocab) -> their `LogitChanges`,
    with the `k` largest rises and falls per condition."""
    base64 = np.asarray(base, dtype=np.float64)
    cond = np.asarray(logits, dtype=np.float64).reshape(-1, base64.shape[-1])
    delta = cond - base64
    base_lp, cond_lp = log_softmax(base64), log_softmax(cond)
    top = int(np.argmax(base64))
    k = max(1, min(int(k), base64.shape[-1]))
    order = np.argsort(-delta, axis=1, kind="stable")
    return LogitChanges(
        predicted=cond.argmax(axis=1).astype(np.int64),
        predicted_prob=np.exp(cond_lp.max(axis=1)),
        base_top=top,
        delta_base_top=delta[:, top],
        delta_logprob=cond_lp[:, top] - base_lp[top],
        delta_centered=delta[:, top] - delta.mean(axis=1),
        kl=(np.exp(base_lp) * (base_lp - cond_lp)).sum(axis=1),
        rose=order[:, :k].astype(np.int64),
        fell=order[:, ::-1][:, :k].astype(np.int64),
        delta=delta,
    )


@dataclass(frozen=True, repr=False)
class Ablation:
    """Conditions (`core.conditions`) run against the unablated forward pass
    of one prompt, read at one query position. `table()` has one row per
    condition; `changes(name)` the tokens that rose and fell most; `runs[name]`
    is the captured run under that condition (attention rows and lens see
    the intervened forward), `base` the unablated one."""

    base: Run
    runs: dict[str, Run]
    conditions: tuple[Condition, ...]
    at: str
    """The query read (a name of `base.queries`)."""
    base_logits: NDArray[np.float32]
    """(vocab,) the baseline's next-token logits at `at`."""
    logits: NDArray[np.float32]
    """(condition, vocab) the logits under each condition."""
    vocab: dict[int, str]
    """Token id -> text, for every id the tables name."""
    top_k: int = 20

    @property
    def position(self) -> int:
        """The token position t of the query read."""
        return self.base.queries[self.at]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.conditions]

    def _changes(self) -> LogitChanges:
        return logit_changes(self.base_logits, self.logits, self.top_k)

    def table(self) -> pd.DataFrame:
        """One row per condition: what it does, the new top token and its
        probability, and the changes of the baseline's top token (logit,
        log-probability, centred logit) and KL(baseline ‖ condition)."""
        c = self._changes()
        top = self.vocab.get(c.base_top, str(c.base_top))
        return pd.DataFrame(
            {
                "condition": self.names,
                "interventions": [cond.describe() for cond in self.conditions],
                "predicted": [self.vocab.get(int(i), str(i)) for i in c.predicted],
                "predicted_id": c.predicted,
                "predicted_prob": c.predicted_prob,
                "base_top": top,
                "delta_base_top": c.delta_base_top,
                "delta_logprob": c.delta_logprob,
                "delta_centered": c.delta_centered,
                "kl": c.kl,
            }
        )

    def changes(self, condition: str | int = 0, k: int | None = None) -> pd.DataFrame:
        """The `k` (default `top_k`) tokens whose logit rose most and fell most
        under `condition` (a name or an index), with their Δ."""
        index = self._index(condition)
        c = self._changes()
        k = self.top_k if k is None else max(1, min(int(k), self.top_k))
        rose, fell = c.rose[index, :k], c.fell[index, :k]
        return pd.DataFrame(
            {
                "rank": np.arange(1, k + 1),
                "rose": [self.vocab.get(int(i), str(i)) for i in rose],
                "rose_id": rose,
                "rose_delta": c.delta[index, rose],
                "fell": [self.vocab.get(int(i), str(i)) for i in fell],
                "fell_id": fell,
                "fell_delta": c.delta[index, fell],
            }
        )

    def _index(self, condition: str | int) -> int:
        names = self.names
        if isinstance(condition, str):
            if condition not in names:
                raise SelectionError(
                    f"Unknown condition {condition!r}; the conditions are {names}."
                )
            return names.index(condition)
        if isinstance(condition, (int, np.integer)) and not isinstance(condition, bool):
            if -len(names) <= condition < len(names):
                return int(condition) % len(names)
        raise SelectionError(
            f"condition must be a name from {names} or an index 0..{len(names) - 1}, got "
            f"{condition!r}."
        )

    def __repr__(self) -> str:
        model = self.base.model_info.get("model_id", "unknown model")
        top = self.table()
        lines = [
            f"Ablation({model}: {len(self.conditions)} condition(s) at query {self.at!r} "
            f"(token {self.position}, {self.base.tokens[self.position]!r}))"
        ]
        for row in top.to_dict("records"):
            lines.append(
                f"  {row['condition']}: predicts {row['predicted']!r} "
                f"({row['predicted_prob']:.3f}); Δlogp({row['base_top']!r}) "
                f"{row['delta_logprob']:+.4f}, KL {row['kl']:.4f}"
            )
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | tuple:
        """In a Jupyter kernel an ablation displays as `tw.AblationView(ablation)`."""
        return seam.display_bundle(self, include, exclude)
