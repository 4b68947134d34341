// Token backgrounds drawn on one canvas behind the text.
//
// Recolouring 2048 spans through `style.backgroundColor` costs a style
// recalculation of every span (~16 ms on a slow CPU); filling 2048 rectangles
// on a canvas costs about 0.5 ms and leaves the text untouched. The canvas
// lies under the flowing text inside the scroll box, covers its whole content
// and scrolls with it; token rectangles are measured once per layout (and
// again when the box is resized).

/** Most canvas pixels we allocate (the browser scales a smaller canvas up). */
const MAX_PIXELS = 16_000_000;
const MAX_SIDE = 32_000;

export class Backdrop {
  readonly canvas: HTMLCanvasElement;
  private context: CanvasRenderingContext2D | null;
  private tokens = new Int32Array(0); // token of each rectangle
  private boxes = new Float32Array(0); // x, y, width, height per rectangle, CSS px
  private order = new Int32Array(0); // rectangles grouped by colour (scratch of paint)
  private starts = new Int32Array(0); // where each colour's rectangles start in `order`
  private scale = 1;
  private stale = true;
  private observer: ResizeObserver | null = null;

  constructor(
    private box: HTMLElement,
    private spans: HTMLElement[],
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "tw-backdrop";
    this.canvas.setAttribute("aria-hidden", "true");
    box.prepend(this.canvas);
    this.context = this.canvas.getContext("2d", { alpha: true });
  }

  /** Re-measure when the box changes size; `onChange` repaints. */
  watch(onChange: () => void): () => void {
    const invalidate = () => {
      this.stale = true;
      onChange();
    };
    if (typeof ResizeObserver !== "undefined") {
      let width = -1;
      this.observer = new ResizeObserver(() => {
        if (this.box.clientWidth === width) return; // height changes do not rewrap
        width = this.box.clientWidth;
        invalidate();
      });
      this.observer.observe(this.box);
    }
    document.fonts?.ready.then(invalidate, () => {});
    return () => this.observer?.disconnect();
  }

  /** Rectangles of every token (several where a token wraps), in content px. */
  private measure(): boolean {
    const box = this.box;
    if (!this.context || !box.isConnected || box.clientWidth === 0) return false;
    const style = this.canvas.style;
    style.width = style.height = "0px"; // so the old canvas does not hold the content size
    const origin = box.getBoundingClientRect();
    const left = origin.left + box.clientLeft - box.scrollLeft;
    const top = origin.top + box.clientTop - box.scrollTop;
    const tokens: number[] = [];
    const boxes: number[] = [];
    for (let i = 0; i < this.spans.length; i++) {
      for (const rect of this.spans[i].getClientRects()) {
        if (rect.width === 0) continue;
        tokens.push(i);
        boxes.push(rect.left - left, rect.top - top, rect.width, rect.height);
      }
    }
    this.tokens = Int32Array.from(tokens);
    this.boxes = Float32Array.from(boxes);
    const width = box.scrollWidth;
    const height = box.scrollHeight;
    const dpr = window.devicePixelRatio || 1;
    this.scale = Math.min(dpr, MAX_SIDE / width, MAX_SIDE / height, Math.sqrt(MAX_PIXELS / (width * height)));
    this.canvas.width = Math.max(1, Math.floor(width * this.scale));
    this.canvas.height = Math.max(1, Math.floor(height * this.scale));
    style.width = `${width}px`;
    style.height = `${height}px`;
    this.stale = false;
    return true;
  }

  /** Fill each token's rectangles with colours[index[token]]; index 0 stays clear.
   * Rectangles are grouped by colour (a counting sort), so the context parses
   * each colour once rather than once per token: on a log scale nearly every
   * token is shaded, each in a colour of its own. */
  paint(index: ArrayLike<number>, colours: string[]): void {
    if (this.stale && !this.measure()) return;
    const context = this.context!;
    context.setTransform(this.scale, 0, 0, this.scale, 0, 0);
    context.clearRect(0, 0, this.canvas.width / this.scale, this.canvas.height / this.scale);
    const { tokens, boxes } = this;
    const n = tokens.length;
    if (this.order.length < n) this.order = new Int32Array(n);
    if (this.starts.length < colours.length + 1) this.starts = new Int32Array(colours.length + 1);
    const { order, starts } = this;
    starts.fill(0);
    for (let r = 0; r < n; r++) {
      const value = index[tokens[r]];
      if (value > 0) starts[value + 1]++;
    }
    for (let v = 1; v < colours.length; v++) starts[v + 1] += starts[v];
    const next = starts.slice(); // where the next rectangle of each colour goes
    for (let r = 0; r < n; r++) {
      const value = index[tokens[r]];
      if (value > 0) order[next[value]++] = r;
    }
    for (let v = 1; v < colours.length; v++) {
      if (starts[v + 1] === starts[v]) continue;
      context.fillStyle = colours[v];
      for (let k = starts[v]; k < starts[v + 1]; k++) {
        const b = order[k] * 4;
        context.fillRect(boxes[b], boxes[b + 1], boxes[b + 2], boxes[b + 3]);
      }
    }
  }
}
