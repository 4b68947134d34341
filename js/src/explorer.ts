// Explorer: the token heatmap with the cooking curves and the logit lens
// under it, all driven by one synced selection (layer, query, head). Moving
// the slider, clicking a curve or a lens row moves every cursor.

import { CurvesPanel, type Normalize } from "./curves";
import { type HeatmapState, HeatmapView } from "./heatmap";
import { LensPanel } from "./lens";
import { type AnyModel, type RenderProps, h, mount } from "./model";

export interface ExplorerState extends HeatmapState {
  normalize: Normalize;
}

export class ExplorerView {
  readonly heatmap: HeatmapView;
  readonly curves: CurvesPanel;
  readonly lens: LensPanel;

  constructor(model: AnyModel<ExplorerState>, el: HTMLElement) {
    this.heatmap = new HeatmapView(model, el);
    const p = this.heatmap.p;
    const query = () => this.heatmap.query;
    const head = () => this.heatmap.head;
    this.curves = new CurvesPanel(model, p, query, head);
    this.lens = new LensPanel(model, p, query);
    const panels = this.heatmap.root.appendChild(h("div", "tw-panels"));
    panels.append(this.curves.root, this.lens.root);
  }

  destroy(): void {
    this.curves.destroy();
    this.lens.destroy();
    this.heatmap.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<ExplorerState>) => mount(model, el, () => new ExplorerView(model, el)),
};
