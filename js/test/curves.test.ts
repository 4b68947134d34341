// @vitest-environment jsdom
// The front end's normalisation (curves.ts) against hand-computed numbers and
// against Python's Run.curves on the golden nested run (tests/helpers/golden.py);
// the curves panel's exclude selector against the same numbers.

import { afterEach, describe, expect, it } from "vitest";
import {
  type ExcludeSpec,
  type Exclusion,
  type Normalize,
  defaultExclusion,
  describeExclusion,
  excludedMasses,
  firstMasses,
  format,
  normalize,
  ownRegions,
  rawMasses,
  regionTree,
  resolveExclusion,
} from "../src/curves";
import { CurvesView, type CurvesViewState } from "../src/curves_view";
import { decodePayload } from "../src/wire";
import { FakeModel } from "./fake-model";
import { fixture } from "./golden";

afterEach(() => document.body.replaceChildren());

// one layer, tokens 0..7 with attention w; regions as the fixture's:
// template {0, 3, 4} (holds the first token), system {1, 2}, user {5, 6, 7}, question {5, 6} in user
const w = [0.4, 0.1, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1];
const members = [[0, 3, 4], [1, 2], [5, 6, 7], [5, 6]];
const regions = [
  { name: "template", section: "template", parent: null, builtin: true, tokenIndices: members[0] },
  { name: "system", section: "system", parent: null, builtin: true, tokenIndices: members[1] },
  { name: "user", section: "user", parent: null, builtin: true, tokenIndices: members[2] },
  { name: "question", section: "user", parent: null, builtin: false, tokenIndices: members[3] },
];
const mass = Float64Array.from(members.map((tokens) => tokens.reduce((sum, t) => sum + w[t], 0)));
const first = Float64Array.from([w[0]]);
const tree = regionTree(regions);
const none: Exclusion = { first: false, regions: [] };

function curves(mode: Normalize, exclusion?: Exclusion, level = Infinity, keep: boolean[] | null = null): number[] {
  return Array.from(normalize(mass, first, 1, regions, tree, mode, exclusion, level, keep));
}

describe("normalize", () => {
  it("builds the region tree as core.masses does", () => {
    expect(tree.parent).toEqual([-1, -1, -1, 2]); // a top-level user region hangs under its section
    expect(tree.depth).toEqual([0, 0, 0, 1]);
    expect(tree.holdsFirst).toEqual([true, false, false, false]);
    expect(ownRegions(tree)).toEqual([false, false, true, false]);
    expect(ownRegions(tree, 0)).toEqual([false, false, false, false]);
  });

  it("shares over the leaves without the first token by default", () => {
    // kept: template 0.15, system 0.15, user's own token 0.1, question 0.2; total 0.6
    const share = curves("share");
    [0.25, 0.25, 0.1 / 0.6, 0.2 / 0.6].forEach((v, r) => expect(share[r]).toBeCloseTo(v, 12));
    expect(share.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(defaultExclusion("share")).toEqual({ first: true, regions: [] });
    expect(describeExclusion(defaultExclusion("share"))).toBe("first token");
  });

  it("shares over the leaves with nothing excluded, and at depth 0", () => {
    [0.55, 0.15, 0.1, 0.2].forEach((v, r) => expect(curves("share", none)[r]).toBeCloseTo(v, 12));
    const sections = curves("share", undefined, 0);
    [0.25, 0.25, 0.5].forEach((v, r) => expect(sections[r]).toBeCloseTo(v, 12));
    expect(sections[3]).toBeNaN(); // below the share level
  });

  it("renormalises raw masses only when something is excluded", () => {
    [0.55, 0.15, 0.3, 0.2].forEach((v, r) => expect(curves("raw")[r]).toBeCloseTo(v, 12));
    const withoutFirst = curves("raw", { first: true, regions: [] });
    [0.25, 0.25, 0.5, 0.2 / 0.6].forEach((v, r) => expect(withoutFirst[r]).toBeCloseTo(v, 12));
    const withoutTemplate = curves("raw", { first: false, regions: ["template"] });
    expect(withoutTemplate[0]).toBeNaN();
    [1 / 3, 2 / 3, 0.2 / 0.45].forEach((v, r) => expect(withoutTemplate[r + 1]).toBeCloseTo(v, 12));
  });

  it("takes an excluded region out of its ancestors and counts density per kept token", () => {
    const share = curves("share", { first: false, regions: ["question"] });
    [0.55 / 0.8, 0.15 / 0.8, 0.1 / 0.8].forEach((v, r) => expect(share[r]).toBeCloseTo(v, 12));
    expect(share[3]).toBeNaN();
    const density = curves("density", { first: true, regions: [] });
    [0.25 / 2, 0.25 / 2, 0.5 / 3, 0.2 / 0.6 / 2].forEach((v, r) => expect(density[r]).toBeCloseTo(v, 12));
  });

  it("leaves the other curves alone when one is hidden", () => {
    const shown = curves("share", undefined, Infinity, [true, false, true, true]);
    expect(shown[1]).toBeNaN();
    [0.25, NaN, 0.1 / 0.6, 0.2 / 0.6].forEach((v, r) => r !== 1 && expect(shown[r]).toBeCloseTo(v, 12));
  });

  it("reads a parent whose children cover it as 0, not float32 rounding", () => {
    // payload masses are float32 sums: user = a + b up to rounding
    const nested = [
      { name: "user", section: "user", parent: null, builtin: true, tokenIndices: [1, 2, 3] },
      { name: "a", section: "user", parent: null, builtin: false, tokenIndices: [1] },
      { name: "b", section: "user", parent: null, builtin: false, tokenIndices: [2, 3] },
    ];
    const a = Math.fround(0.1);
    const b = Math.fround(0.7);
    const user = Math.fround(a + b);
    expect(user - a - b).not.toBe(0);
    const got = normalize(Float64Array.from([user, a, b]), Float64Array.from([0]), 1, nested, regionTree(nested), "share");
    expect(got[0]).toBe(0);
    expect(got[1] + got[2]).toBeCloseTo(1, 12);
  });

  it("reads the synced exclude value as Python's resolve_exclusion", () => {
    expect(resolveExclusion(undefined, "share")).toEqual({ first: true, regions: [] });
    expect(resolveExclusion("auto", "raw")).toEqual(none);
    expect(resolveExclusion(null, "share")).toEqual(none);
    expect(resolveExclusion("template", "raw")).toEqual({ first: false, regions: ["template"] });
    expect(resolveExclusion(["first", "rules"], "raw")).toEqual({ first: true, regions: ["rules"] });
  });

  it("adds the excluded tokens' attention up once", () => {
    // the first token lies in the template: excluding both counts it once
    const both = excludedMasses(mass, first, 1, regions, tree, { first: true, regions: ["template"] });
    expect(both[0]).toBeCloseTo(0.55, 12);
    expect(excludedMasses(mass, first, 1, regions, tree, { first: true, regions: ["question"] })[0]).toBeCloseTo(0.6, 12);
    expect(excludedMasses(mass, first, 1, regions, tree, { first: false, regions: ["user", "question"] })[0]).toBeCloseTo(0.3, 12);
    expect(excludedMasses(mass, first, 1, regions, tree, none)[0]).toBe(0);
  });

  it("gives 0 for constant regions and layers with nothing left", () => {
    const flat = new Float64Array(2 * 4);
    const zero = new Float64Array(2);
    const perRegion = normalize(flat, zero, 2, regions, tree, "per-region");
    const share = normalize(flat, zero, 2, regions, tree, "share");
    expect(Array.from(perRegion).every((v) => v === 0)).toBe(true);
    expect(Array.from(share).every((v) => v === 0)).toBe(true);
  });
});

describe("normalize agrees with Python's Run.curves (golden nested run)", () => {
  const { payload, expect: want } = fixture("curves_payload");
  const p = decodePayload(payload);
  const goldenTree = regionTree(p.regions);

  it("decodes the first token's attention", () => {
    expect(Array.from(p.firstToken)).toEqual(want.first_token);
    expect(Array.from(p.firstTokenHeads)).toEqual(want.first_token_heads);
    expect(goldenTree.depth).toEqual([0, 0, 0, 1, 1, 2, 3, 1]); // system, user, template, persona, rules, rule, clause, question
  });

  it("computes every normalisation, exclusion, share level, query and head as Python does", () => {
    expect(want.curves.length).toBeGreaterThan(100);
    for (const c of want.curves) {
      const level = c.level === "leaves" ? Infinity : c.level;
      const raw = rawMasses(p, c.query, c.head);
      const firsts = firstMasses(p, c.query, c.head);
      const got = normalize(raw, firsts, p.nLayers, p.regions, goldenTree, c.normalize, c.exclude, level);
      const what = `${c.normalize} exclude=${JSON.stringify(c.exclude)} level=${c.level} query=${c.query} head=${c.head}`;
      expect(resolveExclusion(c.spec, c.normalize), what).toEqual(c.exclude);
      const excluded = excludedMasses(raw, firsts, p.nLayers, p.regions, goldenTree, c.exclude);
      c.excluded.forEach((v: number, l: number) => expect(Math.abs(excluded[l] - v), `${what} excluded [${l}]`).toBeLessThan(1e-6));
      expect(got.length, what).toBe(c.values.length);
      c.values.forEach((v: number | null, i: number) => {
        if (v === null) expect(got[i], `${what} [${i}]`).toBeNaN();
        else expect(Math.abs(got[i] - v), `${what} [${i}]: ${got[i]} vs ${v}`).toBeLessThan(1e-12);
      });
      // the labels: a parent's share column says "(own)"
      if (c.normalize === "share") {
        const own = ownRegions(goldenTree, level);
        const labels = p.regions.map((r, i) => (own[i] ? `${r.name} (own)` : r.name)).filter((_, i) => c.values[i] !== null);
        expect(labels, what).toEqual(c.columns);
      }
    }
  });
});

describe("the curves panel's exclude selector (golden nested run)", () => {
  const { payload, expect: want } = fixture("curves_payload");
  const names = decodePayload(payload).regions.map((r) => r.name);

  function mount(overrides: Partial<CurvesViewState> = {}) {
    const model = new FakeModel<CurvesViewState>({ payload, layer: 1, query: "final", head: null, normalize: "share", region: null, hidden: [], ...overrides });
    const el = document.body.appendChild(document.createElement("div"));
    const view = new CurvesView(model, el);
    const select = el.querySelector<HTMLSelectElement>(".tw-exclude-select")!;
    const note = () => el.querySelector(".tw-exclusion-note")!.textContent;
    const choose = (spec: ExcludeSpec) => {
      select.value = JSON.stringify(spec);
      select.dispatchEvent(new Event("change"));
    };
    return { model, el, view, select, note, choose };
  }

  /** Python's numbers for one case of the fixture (head average, query "final", leaves). */
  function python(mode: Normalize, spec: ExcludeSpec) {
    const found = want.curves.find((c: any) => c.normalize === mode && JSON.stringify(c.spec) === JSON.stringify(spec) && c.level === "leaves" && c.query === 1 && c.head === null);
    if (!found) throw new Error(`no golden case for ${mode} ${JSON.stringify(spec)}`);
    return found;
  }

  it("offers auto, the first token, nothing and every region", () => {
    const { select } = mount();
    const choices = Array.from(select.options, (o) => o.textContent);
    expect(choices).toEqual(["auto (first token)", "first token", "nothing", ...names]);
    expect(select.value).toBe('"auto"');
  });

  it("draws Run.curves(normalize, exclude=...) for each choice and says the excluded mass", () => {
    for (const mode of ["share", "raw"] as Normalize[]) {
      const { view, note, choose, model } = mount({ normalize: mode });
      for (const spec of ["first", null, "template", "rule", "auto"] as ExcludeSpec[]) {
        choose(spec);
        expect(model.get("exclude")).toEqual(spec);
        expect(model.saved.at(-1)).toEqual({ exclude: spec });
        const c = python(mode, spec);
        const what = `${mode} exclude=${JSON.stringify(spec)}`;
        for (let l = 0; l < 3; l++) {
          for (let r = 0; r < names.length; r++) {
            const v = c.values[l * names.length + r];
            if (v === null) expect(view.curves.value(l, r), `${what} [${l}, ${r}]`).toBeNaN();
            else expect(Math.abs(view.curves.value(l, r) - v), `${what} [${l}, ${r}]`).toBeLessThan(1e-12);
          }
        }
        // layer 1: the first token's attention, and what the excluded tokens get
        const sink = `sink ${format(want.first_token[1 * 2 + 1])}`;
        const exclusion = resolveExclusion(spec, mode);
        if (exclusion.regions.length) {
          const counted = exclusion.regions.includes("template") ? "" : ", not excluded";
          expect(note(), what).toBe(`excluded ${format(c.excluded[1])} \u00b7 ${sink}${counted}`);
        } else expect(note(), what).toBe(exclusion.first ? sink : `${sink}, not excluded`);
      }
    }
  });

  it("follows exclude set in Python, a list included, and says what auto means", () => {
    const { model, view, select, note } = mount({ normalize: "raw" });
    expect(select.options[0].textContent).toBe("auto (nothing)");
    model.set("exclude", ["first", "rules"]);
    expect(select.selectedOptions[0].textContent).toBe("first token and rules");
    const c = python("raw", ["first", "rules"]);
    expect(view.curves.value(2, 0)).toBeCloseTo(c.values[2 * names.length], 12);
    expect(note()).toBe(`excluded ${format(c.excluded[1])} \u00b7 sink ${format(want.first_token[3])}`);
    model.set("layer", 2); // redrawn: the choice stays
    expect(select.selectedOptions[0].textContent).toBe("first token and rules");
    model.set("head", 1);
    expect(select.selectedOptions[0].textContent).toBe("first token and rules");
    model.set("exclude", ["template"]); // a list of one reads as its name
    expect(select.value).toBe('"template"');
    expect(select.querySelector(".tw-exclude-other")).toBeNull();
    model.set("normalize", "share");
    expect(select.options[0].textContent).toBe("auto (first token)");
  });
});
