"""Cost of `Model.ablate` on the embedded model against plain forward passes.

    python benchmarks/interventions.py                # T ~ 110 (the example) and 512
    python benchmarks/interventions.py --reps 5 --lengths 512

`ablate` with 20 conditions runs 21 captured passes (the baseline and one
per condition: every layer's attention rows at the queries, the lens, the
logits at t). It is compared with 20 and with 21 plain forward passes
(`model(ids, use_cache=False)`, logits of the last position only, as the
capture keeps them), the same token ids, measured interleaved (plain,
ablate, plain, ...) in one process; times are medians in wall-clock
seconds. The conditions: 9 head ablations of one layer at t, 5 value
ablations (t-1, t-1..t-2, one layer and all layers, per head and for every
head), 2 region knockouts in each mode, 2 mean ablations, all of one kind
per condition.

`attribute` is compared with one plain forward + backward of the same loss
(the target's summed log-prob, from input embeddings that require grad,
`torch.autograd.grad` to them), interleaved the same way.

Targets (issue 12): ablate with 20 conditions <= 1.2x 20 plain forwards;
attribute <= 1.3x one forward + backward. `fit_head_gates` is timed per
update step (one forward and backward over the cases with their targets,
and an Adam step on the gates), next to the same forward + backward.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import tealeaves_widgets as tw
from tealeaves_widgets.prompt.examples import EXAMPLE_CASE, EXAMPLE_REGIONS

FILLER = (
    "The committee reviewed the quarterly figures, asked for the missing receipts, "
    "and agreed to meet again after the audit. Each member read the summary aloud; "
    "nobody objected to the new travel policy, though several wanted clearer rules "
    "for shared expenses and for the use of personal vehicles on company business. "
)


def conditions(n_heads: int, layer: int) -> dict:
    out: dict = {f"L{layer}H{h}": tw.HeadAblation(layer, h) for h in range(min(n_heads, 9))}
    out["values t-1"] = tw.ValueAblation(layer, "t-1")
    out["values t-1..t-2"] = tw.ValueAblation(layer, "t-1..t-2")
    out["values t-1 all layers"] = tw.ValueAblation("all", "t-1")
    out["values t-1 heads 0,1"] = tw.ValueAblation(layer, "t-1", heads=[0, 1])
    out["values before t, head 2"] = tw.ValueAblation(layer, "before_t", heads=[2])
    out["rules (values)"] = tw.RegionKnockout("rules")
    out["rules (mask)"] = tw.RegionKnockout("rules", "mask")
    out["facts (values)"] = tw.RegionKnockout("facts")
    out["facts (mask)"] = tw.RegionKnockout("facts", "mask")
    out[f"L{layer}H0 mean"] = tw.HeadAblation(layer, 0, "t", "mean")
    out[f"L{layer}H1 mean"] = tw.HeadAblation(layer, 1, "all", "mean")
    assert len(out) == 20, len(out)
    return out


def case_of_length(model: tw.Model, length: int | None) -> tw.Case:
    if length is None:
        return EXAMPLE_CASE
    user = EXAMPLE_CASE.user
    while len(model.render(tw.Case(system=EXAMPLE_CASE.system, user=user)).token_ids) < length:
        user = FILLER + user
    return tw.Case(system=EXAMPLE_CASE.system, user=user)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="example,512")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = tw.load_model()
    layer = model.shape.n_layers // 2
    print(model)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for text in args.lengths.split(","):
        case = case_of_length(model, None if text == "example" else int(text))
        ids = torch.as_tensor(model.render(case).token_ids)[None]
        conds = conditions(model.shape.n_heads, layer)
        model.ablate(case, conds, EXAMPLE_REGIONS)  # warm up
        plain, ablate = [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            for _ in range(20):
                model.hf_model(input_ids=ids, use_cache=False, logits_to_keep=1)
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.ablate(case, conds, EXAMPLE_REGIONS)
            ablate.append(time.perf_counter() - start)
        p20, a = statistics.median(plain), statistics.median(ablate)
        p21 = p20 * 21 / 20
        print(
            f"T={ids.shape[1]:5d}: 20 plain forwards {p20:7.3f} s | ablate, 20 conditions "
            f"{a:7.3f} s | ablate / 20 plain = {a / p20:.2f}x (target <= 1.2x), "
            f"/ 21 plain = {a / p21:.2f}x"
        )
        target = " Paris and Oslo."
        target_ids = model.tokenizer(target, add_special_tokens=False)["input_ids"]
        full = torch.cat([ids, torch.as_tensor(target_ids)[None]], dim=1)
        n = ids.shape[1]

        def plain_backward(full: torch.Tensor = full, n: int = n, target_ids=target_ids) -> None:
            with torch.enable_grad():
                embeds = model.hf_model.get_input_embeddings()(full).detach().requires_grad_(True)
                logits = model.hf_model(inputs_embeds=embeds, use_cache=False).logits[0]
                rows = torch.log_softmax(logits[n - 1 : n - 1 + len(target_ids)].float(), -1)
                value = rows.gather(1, torch.as_tensor(target_ids)[:, None]).sum()
                torch.autograd.grad(value, embeds)

        model.attribute(case, target, EXAMPLE_REGIONS)  # warm up
        plain, attribute = [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            plain_backward()
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.attribute(case, target, EXAMPLE_REGIONS)
            attribute.append(time.perf_counter() - start)
        f, at = statistics.median(plain), statistics.median(attribute)
        print(
            f"T={n:5d}: forward + backward {f:7.3f} s | attribute {at:7.3f} s | "
            f"attribute / (forward + backward) = {at / f:.2f}x (target <= 1.3x)"
        )
        steps = 4
        start = time.perf_counter()
        model.fit_head_gates([case], [target], steps=(steps, steps), progress=False)
        per_step = (time.perf_counter() - start) / (3 * steps)
        print(
            f"T={n:5d}: fit_head_gates {per_step:7.3f} s per update step "
            f"({per_step / f:.2f}x one forward + backward)"
        )


if __name__ == "__main__":
    main()
