"""TransformerLens' `detect_head` beside `Model.detect_head`, on one tiny GQA
Llama booted into TransformerLens from the same local weights (no hub): the
largest |TransformerLens - ours| over the three built-in patterns, both
exclude flags and both error measures (the test asserts <= 1e-6; this prints
the figure).

    pip install -e ".[parity]"
    python benchmarks/detect_head_parity.py
"""

from __future__ import annotations

import copy
import itertools
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from transformer_lens import head_detector
    from transformer_lens.model_bridge import TransformerBridge

    import tealeaves_widgets as tw
    from tealeaves_widgets.models.loading import load_embedded_tokenizer
    from tests.helpers.tiny_models import make_tiny_model
    from tests.integration.test_tl_parity import SEQ

    tokenizer = load_embedded_tokenizer()
    bridge = TransformerBridge.boot_transformers(
        "tiny-llama",
        hf_model=make_tiny_model("llama", attn_implementation="eager"),
        tokenizer=copy.deepcopy(tokenizer),
        device="cpu",
    )
    ours = tw.load_model(make_tiny_model("llama"), tokenizer=tokenizer)
    tokens = bridge.to_tokens(SEQ)
    ids = tokens[0].numpy()
    _, cache = bridge.run_with_cache(tokens, remove_batch_dim=True)
    worst = {"mul": 0.0, "abs": 0.0}
    patterns = ("previous_token_head", "duplicate_token_head", "induction_head")
    for pattern, bos, current, measure in itertools.product(
        patterns, (False, True), (False, True), ("mul", "abs")
    ):
        flags = dict(exclude_bos=bos, exclude_current_token=current, error_measure=measure)
        theirs = head_detector.detect_head(bridge, SEQ, pattern, cache=cache, **flags)
        diff = np.abs(theirs.double().numpy() - ours.detect_head(ids, pattern, **flags)).max()
        worst[measure] = max(worst[measure], float(diff))
    print(
        f"T = {len(ids)} tokens, 3 patterns x 4 flag combinations per measure: "
        f"max |TransformerLens - ours| mul {worst['mul']:.2g}, abs {worst['abs']:.2g} "
        "(target <= 1e-6)"
    )


if __name__ == "__main__":
    main()
