// The golden fixtures written by Python (tests/helpers/golden.py from the
// schema in tealeaves_widgets/widgets/schema.py) decode here to exactly what
// Python decodes from them. A key renamed on either side fails this test or
// tests/unit/test_wire_golden.py.

import { describe, expect, it } from "vitest";
import { decodeAggregate, decodeDiff } from "../src/compare_wire";
import { readMessage } from "../src/messages";
import { decodeHeadRows, decodePayload, float16ToFloat32 } from "../src/wire";
import { fixture, values } from "./golden";

describe("golden fixtures from Python", () => {
  it("decodes the run payload to Python's numbers", () => {
    const { payload, expect: want } = fixture("run_payload");
    const p = decodePayload(payload);
    expect(p.nTokens).toBe(want.n_tokens);
    expect(p.queryNames).toEqual(["answer", "final"]);
    expect(p.regions.map((r) => r.name)).toEqual(["template", "system", "user", "question"]);
    expect(p.tokens[5]).toBe(" <b>?</b>");
    expect(values(p.attention)).toEqual(want.attention);
    expect(values(p.curves)).toEqual(want.curves);
    expect(values(p.curvesHeads)).toEqual(want.curves_heads);
    expect(values(p.firstToken)).toEqual(want.first_token);
    expect(values(p.firstTokenHeads)).toEqual(want.first_token_heads);
    expect(values(p.tokenRegion)).toEqual(want.token_region);
    expect(values(p.lens.topIds)).toEqual(want.top_ids);
    expect(values(p.lens.trackedRanks)).toEqual(want.tracked_ranks);
    expect(p.heads.map((h) => h !== null)).toEqual(want.heads_loaded);
    expect(values(p.heads[1]!.values)).toEqual(want.head_rows_final);
    expect(p.pending).toBeNull();
  });

  it("decodes the variant diff payload to Python's tables", () => {
    const { payload, expect: want } = fixture("diff_payload");
    const p = decodeDiff(payload);
    expect(p.variants).toEqual(["baseline", "terse"]);
    expect(p.runs.length).toBe(want.runs);
    expect(values(p.table.delta.values)).toEqual(want.delta);
    expect(values(p.curves.mass.values)).toEqual(want.mass);
    expect(values(p.cases[0].alignments[1]!.op)).toEqual(want.op);
    expect(p.options.excluded).toBe("first token");
    expect(p.options.firstExcluded).toBe(true);
    expect(p.options.minEffect).toBe(0.01);
    expect(values(p.sink!.first.values)).toEqual(want.sink_first);
    expect(values(p.sink!.excluded.values)).toEqual(want.sink_excluded);
    expect(values(p.table.significant.values)).toEqual(want.significant);
    expect(values(p.table.sink_reassigned.values)).toEqual(want.sink_reassigned);
    expect(p.regionLabels).toEqual(["template", "system", "user (own)", "question"]);
  });

  it("decodes the aggregate payload to Python's aggregates", () => {
    const { payload, expect: want } = fixture("aggregate_payload");
    const p = decodeAggregate(payload);
    expect(p.values.shape).toEqual(want.shape);
    expect(values(p.values.values)).toEqual(want.values);
    expect(p.normalizations).toEqual(["raw", "share"]);
    expect(p.excluded).toEqual(["nothing", "first token"]);
    expect(p.own).toEqual([false, false, true, false]);
  });

  it("reads the kernel's head rows reply and its buffer", () => {
    const { payload, expect: want } = fixture("head_rows_reply");
    const message = readMessage(payload.content);
    expect(message?.kind).toBe("head_rows");
    if (message?.kind !== "head_rows") throw new Error("not a head_rows reply");
    expect(message.id).toBe(7);
    const rows = decodeHeadRows({ encoding: message.encoding, rows: { ...message.rows, data: payload.buffers[0] } }, 3, 2, "reply");
    expect(values(rows.values)).toEqual(want.rows);
    expect(values(float16ToFloat32(new Uint16Array([0x3c00])))).toEqual([1]);
  });

  it("reads the kernel's error reply", () => {
    const { payload } = fixture("error_reply");
    const message = readMessage(payload.content);
    expect(message).toEqual({ v: 1, kind: "error", id: 8, request: "head_rows", message: "WireError: Query row 5 is out of range for 2 queries." });
  });
});
