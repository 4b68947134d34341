// Explorer: the token heatmap with the cooking curves and the logit lens
// under it, all driven by one synced selection (layer, query, head, region).
// Moving the slider, clicking a curve or a lens row moves every cursor;
// picking a region in either legend highlights its tokens and its curve.
//
// While model.explore runs the capture, the payload arrives with zeros and
// `pending` set; "layers" messages fill it in, and the complete payload
// (synced state, so an exported notebook has it) replaces it at the end.
// Meanwhile the layer follows the newest one computed, until the user picks a
// layer (slider, curves, lens, or `view.layer` set in Python); then it stays.

import { CurvesPanel, type Normalize } from "./curves";
import { type HeatmapState, HeatmapView } from "./heatmap";
import { LensPanel } from "./lens";
import { readMessage } from "./messages";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { type LayersMessage, applyLayers, layersDone } from "./wire";

export interface ExplorerState extends HeatmapState {
  normalize: Normalize;
  hidden: string[];
}

export class ExplorerView {
  readonly heatmap: HeatmapView;
  readonly curves: CurvesPanel;
  readonly lens: LensPanel;
  /** The layer this view moved to while following the capture, -1 before the first. */
  private followed = -1;
  private cleanups: (() => void)[] = [];

  constructor(
    private model: AnyModel<ExplorerState>,
    el: HTMLElement,
  ) {
    this.heatmap = new HeatmapView(model, el);
    const p = this.heatmap.p;
    const query = () => this.heatmap.query;
    const head = () => this.heatmap.head;
    this.curves = new CurvesPanel(model, p, query, head);
    this.lens = new LensPanel(model, p, query);
    const panels = this.heatmap.root.appendChild(h("div", "tw-panels"));
    panels.append(this.curves.root, this.lens.root);
    // reachable from the page, for tests and tools (e.g. to replay messages)
    Object.defineProperty(this.heatmap.root, "tealeavesView", { value: this, configurable: true });
    const receive = (content: unknown, buffers: (DataView | ArrayBuffer)[]) => {
      const message = readMessage(content);
      if (message?.kind === "layers") this.receiveLayers(message, buffers ?? []);
    };
    model.on("msg:custom", receive);
    this.cleanups.push(() => model.off("msg:custom", receive));
    const pending = p.pending;
    this.heatmap.following = !!pending && !pending.stopped && pending.follow !== false && pending.done < pending.total;
    if (this.heatmap.following) {
      this.heatmap.refresh(); // the progress line says so
      // a layer change this view did not make is the user's choice: stay there
      const moved = () => {
        if (this.heatmap.following && this.model.get("layer") !== this.followed) this.stopFollowing();
      };
      model.on("change:layer", moved);
      this.cleanups.push(() => model.off("change:layer", moved));
    }
  }

  /** Whether the layer still follows the newest one computed. */
  get following(): boolean {
    return this.heatmap.following;
  }

  private stopFollowing(): void {
    this.heatmap.following = false;
    this.heatmap.refresh();
  }

  /** Layers of a running capture: copy them in, redraw what depends on them. */
  receiveLayers(message: LayersMessage, buffers: (DataView | ArrayBuffer)[]): void {
    if (!this.heatmap.p.pending) return; // already complete
    try {
      applyLayers(this.heatmap.p, message, buffers);
    } catch (error) {
      this.heatmap.setStatus(error instanceof Error ? error.message : String(error));
      return;
    }
    const newest = layersDone(this.heatmap.p) - 1;
    if (this.heatmap.following && newest >= 0 && newest !== this.model.get("layer")) {
      this.followed = newest;
      this.model.set("layer", newest);
      this.model.save_changes();
    } else if (this.heatmap.following) {
      this.followed = newest;
    }
    this.heatmap.refresh();
    this.curves.update();
  }

  destroy(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.curves.destroy();
    this.lens.destroy();
    this.heatmap.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<ExplorerState>) => mount(model, el, () => new ExplorerView(model, el)),
};
