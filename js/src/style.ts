// Styles of every view, scoped under .tw-root and injected once per view.

export const CSS = `
.tw-root { position: relative; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; background: #fff; padding: 6px 4px; }
.tw-controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin-bottom: 6px; }
.tw-controls label { display: inline-flex; gap: 5px; align-items: center; }
.tw-controls select, .tw-controls button { font: inherit; }
.tw-controls input[type=range] { width: 220px; }
.tw-play { width: 2.2em; }
.tw-layer-label { font-variant-numeric: tabular-nums; min-width: 6.5em; }
.tw-legend { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin: 2px 0 6px; font-size: 12px; }
.tw-chip { display: inline-flex; gap: 4px; align-items: center; }
.tw-swatch { display: inline-block; width: 14px; height: 4px; border-radius: 1px; }
.tw-bar { display: inline-block; width: 120px; height: 10px; border: 1px solid #ccc; vertical-align: middle; }
.tw-bar-label { font-variant-numeric: tabular-nums; color: #555; }
.tw-status { color: #8a5a00; font-size: 12px; min-height: 0; }
.tw-text { position: relative; isolation: isolate; background: #fff; white-space: pre-wrap; word-break: break-word; font: 13px/1.9 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  max-height: 520px; overflow: auto; border: 1px solid #e3e3e3; border-radius: 4px; padding: 6px 8px; }
.tw-backdrop { position: absolute; left: 0; top: 0; z-index: -1; pointer-events: none; }
.tw-tok { border-bottom: 3px solid transparent; box-decoration-break: clone; -webkit-box-decoration-break: clone;
  border-radius: 2px; cursor: default; }
.tw-tok:hover { outline: 1px solid #333; }
.tw-tok.tw-empty, .tw-mark { color: #999; }
.tw-tok.tw-future { color: #b5b5b5; }
.tw-tok.tw-masked { background-image: repeating-linear-gradient(135deg, rgba(0,0,0,.13) 0 2px, transparent 2px 5px); }
.tw-tok.tw-query { outline: 2px solid #1f6feb; }
.tw-tip { position: absolute; z-index: 10; pointer-events: none; background: #1f2328; color: #fff; padding: 6px 8px;
  border-radius: 4px; font-size: 12px; line-height: 1.4; white-space: pre; max-width: 420px; display: none; }
.tw-tip b { font-weight: 600; }
`;

export function addStyle(root: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
}
