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
.tw-panels { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; align-items: flex-start; }
.tw-panel { border: 1px solid #e3e3e3; border-radius: 4px; padding: 6px 8px; }
.tw-panel-header { display: flex; gap: 8px; align-items: center; margin-bottom: 4px; color: #555; }
.tw-panel-header b { color: #1f2328; }
.tw-chart { display: block; cursor: crosshair; touch-action: none; }
.tw-tick { font-size: 10px; fill: #666; }
.tw-readout { font-size: 11px; color: #444; max-width: 460px; min-height: 1.4em; }
.tw-pick { display: inline-flex; gap: 4px; align-items: center; border: 1px solid transparent; background: none; border-radius: 10px;
  padding: 0 6px; font: inherit; font-size: 12px; color: inherit; cursor: pointer; }
.tw-pick:hover { border-color: #ccc; }
.tw-pick.tw-selected { border-color: #1f6feb; background: #e8f0fe; }
.tw-curve-chip { gap: 0; font-size: 11px; }
.tw-curve-chip .tw-pick { font-size: 11px; }
.tw-curve-chip input { margin: 0 1px 0 0; }
.tw-curve-chip.tw-off .tw-pick { opacity: 0.45; text-decoration: line-through; }
.tw-region-mode .tw-tok:not(.tw-in-region) { opacity: 0.35; }
.tw-region-mode .tw-tok.tw-in-region { text-decoration: underline 2px var(--tw-region, #1f6feb); text-underline-offset: 3px; }
.tw-progress { display: flex; gap: 6px; align-items: center; font-size: 12px; color: #444; margin: 0 0 6px; font-variant-numeric: tabular-nums; }
.tw-progress progress { width: 160px; }
.tw-lens-wait { color: #666; font-style: italic; padding: 8px 6px; white-space: normal; cursor: default; }
.tw-lens-scroll { max-height: 300px; overflow: auto; position: relative; }
.tw-lens-table { border-collapse: collapse; font-size: 11px; }
.tw-lens-table th { position: sticky; top: 0; background: #fff; text-align: left; font-weight: 600; padding: 2px 6px; border-bottom: 1px solid #ddd; }
.tw-lens-table td { padding: 1px 6px; white-space: pre; cursor: pointer; }
.tw-lens-table tr.tw-current td { outline: 1px solid #1f6feb; background-clip: padding-box; font-weight: 600; }
.tw-lens-table tr.tw-current td.tw-num:first-child { background: #1f6feb; color: #fff; }
.tw-lens-text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.tw-lens-p { color: #555; }
.tw-num { text-align: right; font-variant-numeric: tabular-nums; }
.tw-top { color: #0a7a2f; font-weight: 600; }
.tw-diff-title { color: #555; font-size: 12px; margin: 0 0 4px; }
.tw-diff { display: grid; grid-template-columns: 1fr 1fr; column-gap: 0; padding: 0; }
.tw-diff-row { display: contents; }
.tw-diff-cell { padding: 1px 8px; min-width: 0; border-right: 1px solid #e3e3e3; }
.tw-diff-row > .tw-diff-cell:last-child { border-right: none; }
.tw-diff-head > .tw-diff-cell { position: sticky; top: 0; z-index: 1; background: #f6f8fa; color: #555; font: 12px/1.6 system-ui, sans-serif;
  border-bottom: 1px solid #e3e3e3; white-space: normal; }
.tw-diff-change > .tw-diff-cell:first-child { background: #fff5f5; box-shadow: inset 3px 0 0 #cf222e; }
.tw-diff-change > .tw-diff-cell:last-child { background: #f3fff5; box-shadow: inset 3px 0 0 #1a7f37; }
.tw-tok.tw-del { outline: 1px dashed #cf222e; text-decoration: line-through; text-decoration-color: #cf222e; }
.tw-tok.tw-ins { outline: 1px dashed #1a7f37; }
.tw-swatch.tw-dashed { background: repeating-linear-gradient(to right, currentColor 0 5px, transparent 5px 8px); }
.tw-chart-grid { display: flex; flex-wrap: wrap; gap: 6px 10px; }
.tw-region-title { display: flex; gap: 5px; align-items: center; font-size: 12px; color: #333; }
.tw-delta-table td, .tw-tracked-table td { cursor: default; }
.tw-lens-table tr.tw-significant td { background: #fff8c5; font-weight: 600; }
.tw-aggregate-readout { margin-top: 8px; display: inline-block; }
`;

export function addStyle(root: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
}
