// Attribution view: where a target's log-probability comes from, by
// gradient (a tw.Attribution, tealeaves_widgets/widgets/attribution.py), in
// the explorer's style.
//
// - The prompt's tokens as flowing text, each shaded by its gradient norm on
//   the heatmap's palette (linear from 0, or log from the median), or by its
//   signed gradient x input on the diverging palette; hover a token for its
//   values. Both palettes follow the light or dark theme.
// - A bar per region: its share of the prompt's summed gradient norm, with
//   the summed gradient x input beside it; a click marks the region's tokens.
// - The target and its log-probability in the header.
//
// Token text is set with textContent only.

import {
  ATTRIBUTION_SCALES,
  type Attribution,
  type AttributionScale,
  SHADINGS,
  type Shading,
  decodeAttribution,
  firstTokenShare,
  rankByNorm,
  regionDepths,
  shades,
} from "./attribution_wire";
import { signed } from "./ablation_wire";
import { type Palette, divergingPalette, formatWeight, heatPalette } from "./colour";
import { ModelSelect } from "./controls";
import { format } from "./curves";
import { displayText } from "./heatmap";
import { showToken } from "./lens";
import { Listeners } from "./listeners";
import { type AnyModel, type RenderProps, h, mount, showTip } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { ThemeTracker } from "./theme";

export interface AttributionState {
  payload: unknown;
  shading: Shading;
  scale: AttributionScale;
  mask_sink: boolean;
  region: string | null;
}

const SHADING_LABELS: Record<Shading, string> = {
  grad_norm: "|gradient| (grad_norm)",
  grad_x_input: "gradient \u00d7 input (signed)",
};
const SCALE_LABELS: Record<AttributionScale, string> = {
  linear: "linear, 0 to max",
  log: "log, median to max",
};

export class AttributionViewUI {
  readonly root: HTMLDivElement;
  readonly a: Attribution;
  private text!: HTMLDivElement;
  private spans: HTMLSpanElement[] = [];
  private regionBody!: HTMLTableSectionElement;
  private regionRows: HTMLTableRowElement[] = [];
  private bar!: HTMLSpanElement;
  private barLow!: HTMLSpanElement;
  private barHigh!: HTMLSpanElement;
  private scaleNote!: HTMLSpanElement;
  private scaleSelect!: ModelSelect<AttributionState, "scale">;
  private sinkBox!: HTMLInputElement;
  private tip!: HTMLDivElement;
  private readonly painted = new ThemeTracker();
  private heat: Palette = heatPalette([255, 255, 255], [31, 35, 40]);
  private diverging: Palette = divergingPalette([255, 255, 255], [31, 35, 40]);
  private selects: { destroy(): void }[] = [];
  private readonly listeners: Listeners;

  constructor(
    private model: AnyModel<AttributionState>,
    el: HTMLElement,
  ) {
    this.listeners = new Listeners(model);
    const a = (this.a = decodeAttribution(model.get("payload")));
    this.root = h("div", "tw-root tw-attribution-view");
    addStyle(this.root);
    const target = JSON.stringify(a.target);
    const n = a.targetTokens.length;
    const loss =
      a.loss === "first_token"
        ? `first_token: only ${showToken(a.targetTokens[0], -1)}`
        : n === 1
          ? "full_target: 1 token"
          : `full_target: the log-probs of its ${n} tokens summed`;
    const title = this.root.appendChild(h("div", "tw-diff-title tw-attribution-title"));
    title.append("Gradient attribution of ");
    title.appendChild(h("b", "tw-target", `log p(${target}) = ${a.logProb.toFixed(4)}`));
    title.append(` (${loss}; p = ${format(Math.exp(a.logProb))}) \u2014 ${a.tokens.length} prompt tokens \u2014 ${a.modelId}`);
    if (a.gated) title.append(` \u2014 ${a.gated}`);
    this.buildControls();
    const body = this.root.appendChild(h("div", "tw-reader tw-attribution-body"));
    this.buildText(body.appendChild(h("div", "tw-reader-main")));
    this.buildRegions(body);
    this.tip = this.root.appendChild(h("div", "tw-tip"));
    el.replaceChildren(this.root);
    Object.defineProperty(this.root, "tealeavesView", { value: this, configurable: true });
    for (const key of ["shading", "scale", "mask_sink"]) this.listeners.onModel(`change:${key}`, () => this.paint(true));
    this.listeners.onModel("change:region", () => this.updateRegion());
    this.listeners.onThemeOrLayout(this.root, () => this.paint());
    this.paint(true);
    this.updateRegion();
  }

  // -- building ------------------------------------------------------------------

  private buildControls(): void {
    const bar = this.root.appendChild(h("div", "tw-controls"));
    const shading = new ModelSelect(this.model, "shading", "shade by", "tw-shading-select", SHADINGS.map((s) => [s, SHADING_LABELS[s]] as [Shading, string]));
    bar.appendChild(shading.root);
    this.scaleSelect = new ModelSelect(
      this.model,
      "scale",
      "scale",
      "tw-scale-select",
      ATTRIBUTION_SCALES.map((s) => [s, SCALE_LABELS[s]] as [AttributionScale, string]),
    );
    bar.appendChild(this.scaleSelect.root);
    this.selects.push(shading, this.scaleSelect);
    const sink = bar.appendChild(h("label", "", "leave the first token out of the scale "));
    this.sinkBox = sink.appendChild(h("input", "tw-mask-sink"));
    this.sinkBox.type = "checkbox";
    sink.title = "The first token (an attention sink) often takes a large gradient; leave it out so the rest get the colour range (it is then drawn in the darkest shade)";
    this.listeners.on(this.sinkBox, "change", () => {
      this.model.set("mask_sink", this.sinkBox.checked);
      this.model.save_changes();
    });
    bar.appendChild(downloadButton(this.root, "attribution"));
    const legend = this.root.appendChild(h("div", "tw-legend tw-scale"));
    this.barLow = legend.appendChild(h("span", "tw-bar-label"));
    this.bar = legend.appendChild(h("span", "tw-bar"));
    this.barHigh = legend.appendChild(h("span", "tw-bar-label"));
    this.scaleNote = legend.appendChild(h("span", "tw-bar-label tw-scale-note"));
  }

  private buildText(box: HTMLElement): void {
    const a = this.a;
    this.text = box.appendChild(h("div", "tw-text tw-attribution-text"));
    a.tokens.forEach((token, i) => {
      const span = this.text.appendChild(h("span", "tw-tok", displayText(token)));
      span.dataset.i = String(i);
      this.spans.push(span);
    });
    this.listeners.on(this.text, "mouseover", (event: MouseEvent) => {
      const target = (event.target as HTMLElement).closest?.(".tw-tok") as HTMLElement | null;
      if (target) this.tokenTip(target);
    });
    this.listeners.on(this.text, "mouseleave", () => (this.tip.style.display = "none"));
  }

  private tokenTip(target: HTMLElement): void {
    const a = this.a;
    const i = Number(target.dataset.i);
    const region = a.tokenRegion[i] >= 0 ? a.regions[a.tokenRegion[i]].name : "(none)";
    let total = 0;
    for (const v of a.gradNorm) total += v;
    showTip(this.tip, this.root, target, [
      ["token", JSON.stringify(a.tokens[i])],
      ["index", String(i)],
      ["region", region],
      ["grad_norm", `${formatWeight(a.gradNorm[i])} (rank ${rankByNorm(a, i)} of ${a.tokens.length}, ${format(total > 0 ? a.gradNorm[i] / total : NaN)} of the sum)`],
      ["grad \u00d7 input", signed(a.gradXInput[i])],
    ]);
  }

  private buildRegions(parent: HTMLElement): void {
    const a = this.a;
    const panel = parent.appendChild(h("div", "tw-panel tw-attribution-regions"));
    const header = panel.appendChild(h("div", "tw-panel-header tw-causal-header"));
    header.appendChild(h("b", "", "Regions"));
    header.append(" share of the prompt's gradient norm");
    const table = panel.appendChild(h("table", "tw-lens-table tw-region-table"));
    const head = table.appendChild(h("thead")).appendChild(h("tr"));
    const columns: [string, string][] = [
      ["region", "Click a region to mark its tokens"],
      ["tokens", "How many prompt tokens it holds"],
      ["share of |grad|", "Its tokens' summed gradient norm, a share of every prompt token's (Attribution.region_table)"],
      ["\u03a3 grad\u00d7input", "Its tokens' summed gradient \u00d7 input. To first order, setting their embeddings to 0 changes the log-probability by minus this: positive, the tokens push the target up; negative, down"],
    ];
    for (const [name, help] of columns) head.appendChild(h("th", "", name)).title = help;
    this.regionBody = table.appendChild(h("tbody"));
    const depths = regionDepths(a);
    let max = 0;
    for (const v of a.regionShare) if (Number.isFinite(v)) max = Math.max(max, v);
    a.regions.forEach((region, r) => {
      const tr = this.regionBody.appendChild(h("tr"));
      tr.dataset.region = region.name;
      tr.tabIndex = 0;
      const name = tr.appendChild(h("td", "tw-ko-region"));
      name.style.paddingLeft = `${6 + 12 * depths[r]}px`;
      name.appendChild(h("span", "tw-swatch")).style.backgroundColor = region.color;
      name.append(region.name);
      tr.appendChild(h("td", "tw-num", String(region.tokenIndices.length)));
      const share = tr.appendChild(h("td", "tw-share"));
      const bar = share.appendChild(h("span", "tw-hbar"));
      const fill = bar.appendChild(h("span", "tw-hbar-fill"));
      fill.style.width = `${max > 0 && Number.isFinite(a.regionShare[r]) ? (100 * a.regionShare[r]) / max : 0}%`;
      fill.style.backgroundColor = region.color;
      const value = share.appendChild(h("span", "tw-num tw-share-value", format(a.regionShare[r])));
      value.dataset.value = String(a.regionShare[r]);
      const gxi = tr.appendChild(h("td", "tw-num tw-gxi", signed(a.regionGradXInput[r])));
      gxi.dataset.value = String(a.regionGradXInput[r]);
      this.regionRows.push(tr);
    });
    panel.appendChild(
      h(
        "div",
        "tw-overview-note",
        "A nested region counts inside its parent too, and the sections (system, user, template) hold the regions within them, so the shares add to more than 1.",
      ),
    );
    const pick = (event: Event) => (event.target as HTMLElement).closest?.("tr[data-region]") as HTMLTableRowElement | null;
    const toggle = (row: HTMLTableRowElement) => {
      const name = row.dataset.region!;
      this.model.set("region", this.model.get("region") === name ? null : name);
      this.model.save_changes();
    };
    this.listeners.on(this.regionBody, "click", (event: MouseEvent) => {
      const row = pick(event);
      if (row) toggle(row);
    });
    this.listeners.on(this.regionBody, "keydown", (event: KeyboardEvent) => {
      const row = pick(event);
      if (row && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        toggle(row);
      }
    });
  }

  // -- state ---------------------------------------------------------------------

  get shading(): Shading {
    const value = this.model.get("shading");
    return SHADINGS.includes(value) ? value : "grad_norm";
  }

  get scale(): AttributionScale {
    const value = this.model.get("scale");
    return ATTRIBUTION_SCALES.includes(value) ? value : "linear";
  }

  // -- drawing -------------------------------------------------------------------

  /** Shade the tokens (`force`: even when the theme did not change). */
  paint(force = false): void {
    const theme = this.painted.next(this.root, force, (theme) => {
      this.heat = heatPalette(theme.background, theme.text);
      this.diverging = divergingPalette(theme.background, theme.text);
    });
    if (!theme) return;
    const shading = this.shading;
    const maskFirst = !!this.model.get("mask_sink");
    this.sinkBox.checked = maskFirst;
    this.scaleSelect.select.disabled = shading === "grad_x_input";
    const result = shades(this.a, shading, this.scale, maskFirst);
    const palette = result.kind === "signed" ? this.diverging : this.heat;
    const values = shading === "grad_x_input" ? this.a.gradXInput : this.a.gradNorm;
    this.spans.forEach((span, i) => {
      const index = result.indices[i];
      const painted = result.kind === "signed" || index > 0;
      span.style.backgroundColor = painted ? palette.colours[index] : "";
      span.style.color = painted ? palette.text[index] : "";
      span.dataset.value = String(values[i]);
      span.dataset.shade = String(index);
    });
    this.drawLegend(result, palette);
  }

  private drawLegend(result: ReturnType<typeof shades>, palette: Palette): void {
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => {
      const index = result.kind === "signed" ? Math.round(t * (palette.colours.length - 1)) : Math.max(1, Math.round(t * 255));
      return `${palette.colours[index]} ${Math.round(t * 100)}%`;
    });
    this.bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    if (result.kind === "signed") {
      this.barLow.textContent = signed(result.low);
      this.barHigh.textContent = signed(result.high);
    } else {
      this.barLow.textContent = result.kind === "log" ? formatWeight(result.low) : "0";
      this.barHigh.textContent = formatWeight(result.high);
    }
    const first = firstTokenShare(this.a);
    const what =
      result.kind === "signed"
        ? "gradient \u00d7 input, symmetric around 0 (red: pushes the target up; blue: down)"
        : result.kind === "log"
          ? "|gradient|, log from the median token to the largest"
          : "|gradient|, linear from 0 to the largest";
    const masked = this.model.get("mask_sink") ? "; first token left out of the scale" : "";
    this.scaleNote.textContent = `${what}${masked} \u2014 the first token holds ${format(first)} of the summed |gradient|`;
    this.bar.title = result.kind === "signed" ? "0 at the centre, in the background's colour" : "";
  }

  private updateRegion(): void {
    const name = this.model.get("region");
    const r = this.a.regions.findIndex((region) => region.name === name);
    const inside = new Set(r >= 0 ? Array.from(this.a.regions[r].tokenIndices) : []);
    this.text.classList.toggle("tw-region-mode", r >= 0);
    if (r >= 0) this.text.style.setProperty("--tw-region", this.a.regions[r].color);
    this.spans.forEach((span, i) => span.classList.toggle("tw-in-region", inside.has(i)));
    this.regionRows.forEach((tr, i) => {
      tr.classList.toggle("tw-current", i === r);
      tr.setAttribute("aria-selected", String(i === r));
    });
  }

  destroy(): void {
    this.listeners.dispose();
    for (const select of this.selects) select.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<AttributionState>) => mount(model, el, () => new AttributionViewUI(model, el)),
};
