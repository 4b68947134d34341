// "Save as PNG" for every view, offline and with no library: the view's DOM is
// painted onto a canvas as the browser laid it out. Boxes draw their
// background, borders and outline; text is drawn line by line where each
// character sits; a <canvas> (the heatmap's backdrop) is copied; an <svg> (the
// charts) is serialised with its computed styles inlined and drawn as an image.
// Scrolling boxes are opened to their full height first, so the whole prompt
// and every lens row are in the picture; the controls become one caption line.

import { h } from "./model";

/** Most pixels of a snapshot (Chromium refuses canvases far larger). */
const MAX_PIXELS = 16_000_000;
const MAX_SIDE = 32_000;
const SCALE = 2;
const CAPTION_PX = 26;

/** Parts of a view left out of the picture (controls become the caption; the
 * overview map's band marks the tokens scrolled into view, the picture has them all). */
const SKIP = ".tw-controls, .tw-tip, .tw-download, .tw-minimap-view, input, progress, style, script, title";
/** Boxes that scroll in the page and open to their full height in the picture. */
const SCROLLERS = ".tw-text, .tw-lens-scroll, .tw-strip, .tw-ablation-scroll";

/** SVG presentation properties copied from the page's CSS into the saved SVG. */
const SVG_PROPERTIES = [
  "fill",
  "fill-opacity",
  "stroke",
  "stroke-width",
  "stroke-opacity",
  "stroke-dasharray",
  "opacity",
  "font-family",
  "font-size",
  "font-weight",
  "text-anchor",
  "visibility",
];

/** The SVG as a standalone document: namespaces, size, and each element's
 * computed style inlined (the page's stylesheet does not travel with it). */
export function serializeSvg(svg: SVGSVGElement): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const sources = [svg, ...Array.from(svg.querySelectorAll("*"))];
  const targets = [clone, ...Array.from(clone.querySelectorAll("*"))];
  sources.forEach((source, i) => {
    const style = getComputedStyle(source);
    const inline = SVG_PROPERTIES.map((name) => [name, style.getPropertyValue(name)] as const)
      .filter(([, value]) => value !== "")
      .map(([name, value]) => `${name}:${value}`)
      .join(";");
    if (inline) targets[i].setAttribute("style", inline);
  });
  const box = svg.getBoundingClientRect();
  if (box.width > 0) clone.setAttribute("width", String(box.width));
  if (box.height > 0) clone.setAttribute("height", String(box.height));
  const xml = new XMLSerializer().serializeToString(clone);
  // the serialiser writes the namespace of an element made with createElementNS
  return xml.includes('xmlns="http://www.w3.org/2000/svg"') ? xml : xml.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
}

/** One caption line from a view's controls: each selector's label and choice,
 * the layer label, and the ticked boxes ("layer 3 / 5 · query final · ..."). */
export function describeControls(root: Element): string {
  const parts: string[] = [];
  for (const bar of Array.from(root.querySelectorAll(".tw-controls"))) {
    for (const label of Array.from(bar.querySelectorAll("label"))) {
      if (label.classList.contains("tw-view-option")) continue; // how the view is laid out, not what it shows
      const select = label.querySelector("select");
      const box = label.querySelector<HTMLInputElement>("input[type=checkbox]");
      const own = Array.from(label.childNodes)
        .filter((node) => node.nodeType === Node.TEXT_NODE)
        .map((node) => node.textContent ?? "")
        .join("")
        .trim();
      if (select) parts.push(`${own} ${select.selectedOptions[0]?.textContent ?? select.value}`.trim());
      else if (box) {
        if (box.checked) parts.push(own);
      } else {
        const layer = label.querySelector(".tw-layer-label");
        if (layer?.textContent) parts.push(layer.textContent);
      }
    }
    for (const layer of Array.from(bar.querySelectorAll(":scope > .tw-layer-label"))) {
      if (layer.textContent) parts.push(layer.textContent);
    }
  }
  return parts.filter(Boolean).join(" \u00b7 ");
}

/** A file name for a snapshot: the view's kind and the caption's words. */
export function snapshotName(kind: string, caption: string): string {
  const words = caption
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 80)
    .replace(/-+$/, "");
  return `tealeaves-${kind}${words ? `-${words}` : ""}.png`;
}

export interface Glyph {
  /** The character (one code point). */
  text: string;
  left: number;
  top: number;
  width: number;
}

export interface TextRun {
  text: string;
  left: number;
  top: number;
}

/** Characters grouped into runs drawn with one fillText: consecutive ones on
 * the same line, each starting where the previous ended. */
export function textRuns(glyphs: Glyph[]): TextRun[] {
  const runs: TextRun[] = [];
  let run: TextRun | null = null;
  let next = 0;
  for (const g of glyphs) {
    if (run && Math.abs(g.top - run.top) < 1 && Math.abs(g.left - next) < 1.5) {
      run.text += g.text;
    } else {
      if (run) runs.push(run);
      run = { text: g.text, left: g.left, top: g.top };
    }
    next = g.left + g.width;
  }
  if (run) runs.push(run);
  return runs;
}

// ---------------------------------------------------------------- painting

function visible(colour: string): boolean {
  return colour !== "" && colour !== "transparent" && !/rgba\([^)]*,\s*0\)$/.test(colour);
}

function loadImage(url: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the browser could not draw a chart as an image"));
    image.src = url;
  });
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => (typeof requestAnimationFrame === "undefined" ? setTimeout(resolve, 16) : requestAnimationFrame(() => resolve())));
}

class Painter {
  constructor(
    readonly ctx: CanvasRenderingContext2D,
    readonly left: number,
    readonly top: number,
  ) {}

  async element(el: Element, alpha: number): Promise<void> {
    if (el.matches(SKIP)) return;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") return;
    const opacity = alpha * (style.opacity === "" ? 1 : Number(style.opacity));
    this.ctx.globalAlpha = opacity;
    try {
      if (el instanceof SVGSVGElement) return await this.svg(el);
      if (el instanceof HTMLCanvasElement) return this.canvas(el);
      if (el instanceof HTMLSelectElement) return this.select(el, style);
      if (el instanceof HTMLElement) this.box(el, style);
      for (const child of Array.from(el.childNodes)) {
        if (child.nodeType === Node.TEXT_NODE) this.text(child as Text, style, opacity);
        else if (child instanceof Element) await this.element(child, opacity);
      }
    } finally {
      this.ctx.globalAlpha = alpha;
    }
  }

  /** Background, stripes of a masked token, borders and outline of each box. */
  private box(el: HTMLElement, style: CSSStyleDeclaration): void {
    const ctx = this.ctx;
    for (const rect of Array.from(el.getClientRects())) {
      const [x, y, w, hgt] = [rect.left - this.left, rect.top - this.top, rect.width, rect.height];
      if (visible(style.backgroundColor)) {
        ctx.fillStyle = style.backgroundColor;
        ctx.fillRect(x, y, w, hgt);
      }
      const image = style.backgroundImage;
      if (image.startsWith("repeating-linear-gradient")) this.stripes(x, y, w, hgt);
      else if (image.startsWith("linear-gradient")) this.gradient(image, x, y, w, hgt);
      // the variant diff's changed rows: a bar on the left (box-shadow: inset 3px 0 0 colour)
      const inset = /^(rgba?\([^)]*\)) (\d+(?:\.\d+)?)px 0px 0px(?: 0px)? inset$/.exec(style.boxShadow);
      if (inset) {
        ctx.fillStyle = inset[1];
        ctx.fillRect(x, y, parseFloat(inset[2]), hgt);
      }
      const side = (width: string, kind: string, colour: string, place: (px: number) => [number, number, number, number]) => {
        const px = parseFloat(width);
        if (!(px > 0) || kind === "none" || !visible(colour)) return;
        ctx.fillStyle = colour;
        ctx.fillRect(...place(px));
      };
      side(style.borderTopWidth, style.borderTopStyle, style.borderTopColor, (px) => [x, y, w, px]);
      side(style.borderBottomWidth, style.borderBottomStyle, style.borderBottomColor, (px) => [x, y + hgt - px, w, px]);
      side(style.borderLeftWidth, style.borderLeftStyle, style.borderLeftColor, (px) => [x, y, px, hgt]);
      side(style.borderRightWidth, style.borderRightStyle, style.borderRightColor, (px) => [x + w - px, y, px, hgt]);
      const outline = parseFloat(style.outlineWidth);
      if (outline > 0 && style.outlineStyle !== "none" && visible(style.outlineColor)) {
        ctx.strokeStyle = style.outlineColor;
        ctx.lineWidth = outline;
        ctx.setLineDash(style.outlineStyle === "dashed" ? [3 * outline, 2 * outline] : style.outlineStyle === "dotted" ? [outline, outline] : []);
        const offset = (parseFloat(style.outlineOffset) || 0) + outline / 2;
        ctx.strokeRect(x - offset, y - offset, w + 2 * offset, hgt + 2 * offset);
        ctx.setLineDash([]);
      }
    }
  }

  /** A selector outside the controls (the curves' normalisation): its choice as text. */
  private select(el: HTMLSelectElement, style: CSSStyleDeclaration): void {
    const rect = el.getBoundingClientRect();
    const ctx = this.ctx;
    ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    ctx.fillStyle = style.color;
    ctx.textBaseline = "middle";
    const text = el.selectedOptions[0]?.textContent ?? el.value;
    ctx.fillText(text, rect.left - this.left + 4, rect.top - this.top + rect.height / 2, rect.width - 4);
  }

  /** A left-to-right gradient (the colour bars): its colours evenly spaced. */
  private gradient(image: string, x: number, y: number, w: number, hgt: number): void {
    const colours = image.match(/rgba?\([^)]*\)/g) ?? [];
    if (colours.length < 2 || !image.includes("to right")) return;
    const fill = this.ctx.createLinearGradient(x, 0, x + w, 0);
    colours.forEach((colour, i) => fill.addColorStop(i / (colours.length - 1), colour));
    this.ctx.fillStyle = fill;
    this.ctx.fillRect(x, y, w, hgt);
  }

  private stripes(x: number, y: number, w: number, hgt: number): void {
    const ctx = this.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, w, hgt);
    ctx.clip();
    ctx.strokeStyle = "rgba(0, 0, 0, 0.13)";
    ctx.lineWidth = 2;
    for (let d = -hgt; d < w + hgt; d += 5) {
      ctx.beginPath();
      ctx.moveTo(x + d, y + hgt);
      ctx.lineTo(x + d + hgt, y);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** A text node, line by line where the browser placed its characters. */
  private text(node: Text, style: CSSStyleDeclaration, alpha: number): void {
    const data = node.data;
    if (!data.trim()) return;
    const range = document.createRange();
    const glyphs: Glyph[] = [];
    for (let i = 0; i < data.length; ) {
      const size = (data.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
      const ch = data.slice(i, i + size);
      range.setStart(node, i);
      range.setEnd(node, i + size);
      i += size;
      if (ch === "\n") continue;
      const rect = range.getClientRects?.()[0]; // (jsdom has none)
      if (!rect || rect.width === 0) continue;
      glyphs.push({ text: ch, left: rect.left - this.left, top: rect.top - this.top, width: rect.width });
    }
    const ctx = this.ctx;
    ctx.globalAlpha = alpha;
    ctx.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    ctx.fillStyle = style.color;
    ctx.textBaseline = "alphabetic";
    const size = parseFloat(style.fontSize) || 13;
    const strike = style.textDecorationLine.includes("line-through");
    for (const run of textRuns(glyphs)) {
      if (!run.text.trim()) continue;
      const metrics = ctx.measureText(run.text);
      const ascent = metrics.fontBoundingBoxAscent ?? size * 0.8;
      ctx.fillText(run.text, run.left, run.top + ascent);
      if (strike) {
        ctx.fillStyle = style.textDecorationColor || style.color;
        ctx.fillRect(run.left, run.top + ascent - 0.3 * size, metrics.width, Math.max(1, size / 14));
        ctx.fillStyle = style.color;
      }
    }
  }

  private canvas(source: HTMLCanvasElement): void {
    const rect = source.getBoundingClientRect();
    if (rect.width && rect.height && source.width > 1) {
      this.ctx.drawImage(source, rect.left - this.left, rect.top - this.top, rect.width, rect.height);
    }
  }

  private async svg(svg: SVGSVGElement): Promise<void> {
    const rect = svg.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const alpha = this.ctx.globalAlpha;
    const url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(serializeSvg(svg))}`;
    const image = await loadImage(url);
    this.ctx.globalAlpha = alpha;
    this.ctx.drawImage(image, rect.left - this.left, rect.top - this.top, rect.width, rect.height);
  }
}

/** The view under `root` as a canvas: a caption line from its controls, then
 * everything it shows (scrolling boxes opened to their full height). */
export async function snapshot(root: HTMLElement): Promise<HTMLCanvasElement> {
  const caption = describeControls(root);
  const restore: (() => void)[] = [];
  const override = (el: HTMLElement, changes: Record<string, string>) => {
    const before = Object.keys(changes).map((name) => [name, el.style.getPropertyValue(name)] as const);
    for (const [name, value] of Object.entries(changes)) el.style.setProperty(name, value);
    restore.push(() => before.forEach(([name, value]) => el.style.setProperty(name, value)));
  };
  for (const el of Array.from(root.querySelectorAll<HTMLElement>(SCROLLERS))) override(el, { "max-height": "none", overflow: "visible" });
  // the controls give way to the caption line
  for (const el of Array.from(root.querySelectorAll<HTMLElement>(".tw-controls"))) override(el, { display: "none" });
  // and where the pointer now is, nothing is hovered (a token's hover outline is no part of the view)
  override(root, { "pointer-events": "none" });
  // charts and tables: as wide as they are, not the page (a prompt's text keeps its wrapping width)
  if (!root.querySelector(".tw-text")) override(root, { width: "fit-content" });
  try {
    await document.fonts?.ready;
    // let views that measure their layout (the heatmap's backdrop) follow it
    await nextFrame();
    await nextFrame();
    const box = root.getBoundingClientRect();
    const width = Math.ceil(box.width);
    const height = Math.ceil(box.height) + CAPTION_PX;
    const scale = Math.min(SCALE, MAX_SIDE / width, MAX_SIDE / height, Math.sqrt(MAX_PIXELS / (width * height)));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.floor(width * scale));
    canvas.height = Math.max(1, Math.floor(height * scale));
    const ctx = canvas.getContext("2d");
    if (!ctx) throw new Error("this browser has no 2D canvas");
    ctx.scale(scale, scale);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = "#57606a";
    ctx.font = `12px ${getComputedStyle(root).fontFamily || "sans-serif"}`;
    ctx.textBaseline = "middle";
    ctx.fillText(caption, 6, CAPTION_PX / 2, width - 12);
    await new Painter(ctx, box.left, box.top - CAPTION_PX).element(root, 1);
    return canvas;
  } finally {
    for (const undo of restore.reverse()) undo();
  }
}

/** A canvas as PNG bytes. */
export function pngBlob(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the browser could not encode the PNG"))), "image/png"),
  );
}

/** Hand `blob` to the browser as a download named `name`. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A "PNG" button for a view's control bar that saves `root` as it is shown;
 * `kind` (or what it returns at the click) starts the file name. A failure is
 * told on the button. */
export function downloadButton(root: HTMLElement, kind: string | (() => string)): HTMLButtonElement {
  const button = h("button", "tw-download", "\u2913 PNG");
  button.type = "button";
  const title = "Save this view as a PNG image (the whole prompt and every row, not only what is scrolled into view)";
  button.title = title;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const canvas = await snapshot(root);
      const name = typeof kind === "string" ? kind : kind();
      download(await pngBlob(canvas), snapshotName(name, describeControls(root)));
      button.textContent = "\u2913 PNG";
      button.title = title;
    } catch (error) {
      button.textContent = "\u2913 PNG failed";
      button.title = `Could not save the PNG: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
