// LensView: the explorer's logit lens alone, with a query selector.

import { SelectionBar, type SelectionState } from "./controls";
import { LensPanel } from "./lens";
import { type AnyModel, type RenderProps, h, mount } from "./model";
import { downloadButton } from "./snapshot";
import { addStyle } from "./style";
import { decodePayload } from "./wire";

export interface LensViewState extends SelectionState {
  payload: unknown;
}

export class LensView {
  readonly root: HTMLDivElement;
  readonly bar: SelectionBar;
  readonly lens: LensPanel;

  constructor(model: AnyModel<LensViewState>, el: HTMLElement) {
    const p = decodePayload(model.get("payload"));
    this.root = h("div", "tw-root tw-lens-view");
    addStyle(this.root);
    this.bar = new SelectionBar(model, p, false);
    this.lens = new LensPanel(model, p, () => this.bar.query);
    this.bar.root.appendChild(downloadButton(this.root, "lens"));
    this.root.append(this.bar.root, this.lens.root);
    el.replaceChildren(this.root);
  }

  destroy(): void {
    this.lens.destroy();
    this.bar.destroy();
  }
}

export default {
  render: ({ model, el }: RenderProps<LensViewState>) => mount(model, el, () => new LensView(model, el)),
};
