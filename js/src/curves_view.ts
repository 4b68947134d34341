// CurvesView: the explorer's cooking curves alone, with a query and head selector.

import { SelectionBar } from "./controls";
import { CurvesPanel, type CurvesState } from "./curves";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { decodePayload } from "./wire";

export interface CurvesViewState extends CurvesState {
  payload: unknown;
}

export class CurvesView {
  readonly root: HTMLDivElement;
  readonly bar: SelectionBar;
  readonly curves: CurvesPanel;

  constructor(model: AnyModel<CurvesViewState>, el: HTMLElement) {
    const p = decodePayload(model.get("payload"));
    this.root = h("div", "tw-root tw-curves-view");
    addStyle(this.root);
    this.bar = new SelectionBar(model, p, true);
    this.curves = new CurvesPanel(model, p, () => this.bar.query, () => this.bar.head);
    this.bar.root.appendChild(downloadButton(this.root, "curves"));
    this.root.append(this.bar.root, this.curves.root);
    el.replaceChildren(this.root);
  }

  destroy(): void {
    this.curves.destroy();
    this.bar.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<CurvesViewState>) => mount(model, el, () => new CurvesView(model, el)),
};
