// Styles of every view, scoped under .tw-root and injected once per view.
//
// Colours come from JupyterLab's theme variables (--jp-*), so a view follows
// its light and dark themes; each has a fallback for a plain page (an
// exported notebook, a report), which is light. The --tw-* names below are
// the only colours the rules use.

export const CSS = `
.tw-root {
  --tw-bg: var(--jp-layout-color0, #fff);
  --tw-bg-raised: var(--jp-layout-color2, #f6f8fa);
  --tw-fg: var(--jp-ui-font-color1, #1f2328);
  --tw-fg-strong: var(--jp-ui-font-color0, #1f2328);
  --tw-fg-muted: var(--jp-ui-font-color2, #555);
  --tw-fg-faint: var(--jp-ui-font-color3, #8c8c8c);
  --tw-border: var(--jp-border-color2, #e3e3e3);
  --tw-border-strong: var(--jp-border-color1, #ccc);
  --tw-axis: var(--jp-border-color0, #999);
  --tw-grid: var(--jp-border-color3, #eee);
  --tw-accent: var(--jp-brand-color1, #1f6feb);
  --tw-tip-bg: var(--jp-inverse-layout-color1, #1f2328);
  --tw-tip-fg: var(--jp-ui-inverse-font-color0, #fff);
  --tw-warn: var(--jp-warn-color0, #8a5a00);
  --tw-good: var(--jp-success-color0, #0a7a2f);
  --tw-add: var(--jp-success-color1, #1a7f37);
  --tw-del: var(--jp-error-color1, #cf222e);
  position: relative; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--tw-fg); background: var(--tw-bg); padding: 6px 4px; }
.tw-root.tw-dark { color-scheme: dark; }
.tw-controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin-bottom: 6px; }
.tw-controls label { display: inline-flex; gap: 5px; align-items: center; }
.tw-controls select, .tw-controls button { font: inherit; }
.tw-controls input[type=range] { width: 220px; }
.tw-play { width: 2.2em; }
.tw-layer-label { font-variant-numeric: tabular-nums; min-width: 6.5em; }
.tw-legend { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin: 2px 0 6px; font-size: 12px; }
.tw-chip { display: inline-flex; gap: 4px; align-items: center; }
.tw-swatch { display: inline-block; width: 14px; height: 4px; border-radius: 1px; }
.tw-bar { display: inline-block; width: 120px; height: 10px; border: 1px solid var(--tw-border-strong); vertical-align: middle; }
.tw-bar-label { font-variant-numeric: tabular-nums; color: var(--tw-fg-muted); }
.tw-scale > .tw-bar-label:not(.tw-scale-note) { display: inline-block; min-width: 4.5em; }
.tw-scale > .tw-bar-label:first-child { text-align: right; }
.tw-scale-note { margin-left: 4px; }
.tw-status { color: var(--tw-fg); font-size: 12px; border-left: 3px solid var(--tw-warn); padding-left: 6px; margin: 0 0 4px; }
.tw-status:empty { display: none; }
.tw-text { position: relative; isolation: isolate; background: var(--tw-bg); color: var(--tw-fg-strong); white-space: pre-wrap; word-break: break-word;
  font: 13px/1.9 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  max-height: 520px; overflow: auto; border: 1px solid var(--tw-border); border-radius: 4px; padding: 6px 8px; }
.tw-backdrop { position: absolute; left: 0; top: 0; z-index: -1; pointer-events: none; }
.tw-tok { border-bottom: 3px solid transparent; box-decoration-break: clone; -webkit-box-decoration-break: clone;
  border-radius: 2px; cursor: default; }
.tw-tok:hover { outline: 1px solid var(--tw-fg-strong); }
.tw-tok.tw-empty, .tw-mark { color: var(--tw-fg-faint); }
.tw-tok.tw-future { color: var(--tw-fg-faint); }
.tw-tok.tw-masked { background-image: repeating-linear-gradient(135deg, color-mix(in srgb, currentColor 16%, transparent) 0 2px, transparent 2px 5px); }
.tw-tok.tw-query { outline: 2px solid var(--tw-accent); }
.tw-tip { position: absolute; z-index: 10; pointer-events: none; background: var(--tw-tip-bg); color: var(--tw-tip-fg); padding: 6px 8px;
  border-radius: 4px; font-size: 12px; line-height: 1.4; white-space: pre; max-width: 420px; display: none;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); }
.tw-tip b { font-weight: 600; }
.tw-panels { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; align-items: flex-start; }
.tw-panel { border: 1px solid var(--tw-border); border-radius: 4px; padding: 6px 8px; min-width: 0; box-sizing: border-box; }
.tw-panels > .tw-curves { flex: 1 1 520px; }
.tw-panels > .tw-lens { flex: 0 1 auto; max-width: 100%; }
.tw-panels > .tw-diff-curves { flex: 1 1 100%; }
.tw-panel-header { display: flex; gap: 8px; align-items: center; margin-bottom: 4px; color: var(--tw-fg-muted); }
.tw-panel-header b { color: var(--tw-fg-strong); }
.tw-chart { display: block; cursor: crosshair; touch-action: none; width: 100%; overflow: visible; }
.tw-tick { font-size: 10px; fill: var(--tw-fg-muted); }
.tw-axis { stroke: var(--tw-axis); }
.tw-grid { stroke: var(--tw-grid); }
.tw-zero { stroke: var(--tw-axis); }
.tw-cursor { stroke: var(--tw-accent); }
.tw-chart .tw-line { transition: stroke-opacity 0.1s; }
.tw-chart .tw-line.tw-dim { stroke-opacity: 0.2; }
.tw-chart .tw-line.tw-hot { stroke-width: 3px; }
.tw-hover-label { font-size: 11px; fill: var(--tw-fg); paint-order: stroke; stroke: var(--tw-bg); stroke-width: 3px; }
.tw-readout { font-size: 11px; color: var(--tw-fg-muted); min-height: 1.4em; }
.tw-pick { display: inline-flex; gap: 4px; align-items: center; border: 1px solid transparent; background: none; border-radius: 10px;
  padding: 0 6px; font: inherit; font-size: 12px; color: inherit; cursor: pointer; }
.tw-pick:hover { border-color: var(--tw-border-strong); }
.tw-pick.tw-selected { border-color: var(--tw-accent); background: color-mix(in srgb, var(--tw-accent) 16%, transparent); }
.tw-curve-chip { gap: 0; font-size: 11px; }
.tw-curve-chip .tw-pick { font-size: 11px; }
.tw-curve-chip input { margin: 0 1px 0 0; }
.tw-curve-chip.tw-off .tw-pick { opacity: 0.45; text-decoration: line-through; }
.tw-curve-chip.tw-no-value .tw-pick { opacity: 0.45; font-style: italic; }
.tw-region-mode .tw-tok:not(.tw-in-region) { opacity: 0.35; }
.tw-region-mode .tw-tok.tw-in-region { text-decoration: underline 2px var(--tw-region, var(--tw-accent)); text-underline-offset: 3px; }
.tw-progress { display: flex; gap: 6px; align-items: center; font-size: 12px; color: var(--tw-fg-muted); margin: 0 0 6px; font-variant-numeric: tabular-nums; }
.tw-progress progress { width: 160px; }
.tw-lens-wait { color: var(--tw-fg-muted); font-style: italic; padding: 8px 6px; white-space: normal; cursor: default; }
.tw-lens-scroll { max-height: 300px; overflow: auto; position: relative; }
.tw-lens-table { border-collapse: collapse; font-size: 11px; color: var(--tw-fg); }
.tw-lens-table th { position: sticky; top: 0; background: var(--tw-bg); color: var(--tw-fg-strong); text-align: left; font-weight: 600; padding: 2px 6px;
  border-bottom: 1px solid var(--tw-border-strong); }
.tw-lens-table td { padding: 1px 6px; white-space: pre; cursor: pointer; }
.tw-lens-table tr.tw-current td { outline: 1px solid var(--tw-accent); background-clip: padding-box; font-weight: 600; }
.tw-lens-table tr.tw-current td.tw-num:first-child { background: var(--tw-accent); color: var(--tw-bg); }
.tw-lens-text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.tw-lens-p { color: var(--tw-fg-muted); }
.tw-num { text-align: right; font-variant-numeric: tabular-nums; }
.tw-top { color: var(--tw-good); font-weight: 600; }
.tw-diff-title { color: var(--tw-fg-muted); font-size: 12px; margin: 0 0 4px; }
.tw-diff { padding: 0; }
.tw-diff-head { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 0 16px; padding: 1px 8px;
  background: var(--tw-bg-raised); color: var(--tw-fg); font: 12px/1.6 system-ui, sans-serif; border-bottom: 1px solid var(--tw-border); white-space: normal; }
.tw-diff-body { padding: 4px 8px; }
.tw-diff del, .tw-diff ins, .tw-legend del, .tw-legend ins { text-decoration: none; }
.tw-del-run, .tw-ins-run { box-decoration-break: clone; -webkit-box-decoration-break: clone; border-radius: 2px; padding: 1px 0; }
.tw-del-run { background: color-mix(in srgb, var(--tw-del) 9%, transparent); outline: 1px dashed var(--tw-del); }
.tw-ins-run { background: color-mix(in srgb, var(--tw-add) 9%, transparent); outline: 1px dashed var(--tw-add); }
.tw-tok.tw-del { text-decoration: line-through 1.5px; text-decoration-color: currentColor; }
.tw-tok.tw-ins { text-decoration: underline 2px; text-decoration-color: var(--tw-add); text-underline-offset: 4px; }
.tw-sink-line { font-size: 12px; color: var(--tw-fg); border-left: 3px solid var(--tw-fg-faint); padding-left: 6px; margin: 0 0 4px; }
.tw-table-note { font-size: 11px; max-width: 60em; }
.tw-swatch.tw-dashed { background: repeating-linear-gradient(to right, currentColor 0 5px, transparent 5px 8px); }
.tw-chart-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 6px 10px; }
.tw-chart-grid.tw-single { grid-template-columns: minmax(0, 1fr); }
.tw-region-chart { min-width: 0; }
.tw-region-title { display: flex; gap: 5px; align-items: center; font-size: 12px; color: var(--tw-fg); }
.tw-delta-table td, .tw-tracked-table td { cursor: default; }
.tw-lens-table tr.tw-significant td { background: color-mix(in srgb, var(--jp-warn-color2, #e3b341) 28%, transparent); font-weight: 600; }
.tw-lens-table tr.tw-sink-flag td { background-image: repeating-linear-gradient(135deg, color-mix(in srgb, currentColor 13%, transparent) 0 2px, transparent 2px 6px); }
.tw-lens-table tr.tw-significant.tw-sink-flag td:not(.tw-flag) { font-weight: normal; }
.tw-lens-table tr td.tw-flag { color: var(--tw-warn); font-weight: 600; }
.tw-aggregate-readout { margin-top: 8px; display: inline-block; }
.tw-reader { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: flex-start; }
.tw-reader-main { flex: 1000 1 480px; min-width: 0; }
/* beside the text it keeps its 290 px (the text takes what grows); wrapped under
   the text (a narrow window) it takes the width, its two panels side by side */
.tw-side { flex: 1 1 290px; min-width: 230px; display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.tw-side > .tw-panel { flex: 1 1 250px; min-width: 0; }
.tw-reader.tw-overview-off > .tw-side, .tw-reader.tw-overview-off .tw-minimap { display: none; }
.tw-minimap { margin: 0 0 6px; }
.tw-minimap-head { display: flex; gap: 8px; align-items: baseline; font-size: 11px; color: var(--tw-fg-muted); white-space: nowrap; }
.tw-minimap-head b { color: var(--tw-fg-strong); font-weight: 600; font-size: 12px; }
.tw-minimap-head > span { overflow: hidden; text-overflow: ellipsis; }
.tw-minimap-readout { margin-left: auto; font-variant-numeric: tabular-nums; color: var(--tw-fg); }
.tw-minimap-box { position: relative; cursor: crosshair; touch-action: none; border: 1px solid var(--tw-border); background: var(--tw-bg); }
.tw-minimap-box canvas { display: block; width: 100%; image-rendering: pixelated; }
.tw-minimap-ribbon { height: 4px; border-top: 1px solid var(--tw-border); }
.tw-minimap-layer { position: absolute; left: -1px; right: -1px; top: 0; box-sizing: border-box; outline: 1.5px solid var(--tw-accent); pointer-events: none;
  will-change: transform; }
.tw-minimap-view { position: absolute; top: -1px; bottom: -1px; box-sizing: border-box; border: 1px solid var(--tw-fg-muted); border-radius: 2px;
  background: color-mix(in srgb, var(--tw-accent) 10%, transparent); pointer-events: none; }
.tw-minimap-query { position: absolute; top: 0; bottom: 0; background: var(--tw-accent); pointer-events: none; }
.tw-side .tw-panel { padding: 4px 6px; }
.tw-side .tw-panel-header { margin-bottom: 2px; font-size: 12px; }
.tw-overview-note { font-size: 11px; color: var(--tw-fg-muted); margin: 0 0 4px; line-height: 1.35; }
.tw-matrix { display: block; width: 100%; cursor: pointer; touch-action: none; overflow: visible; }
.tw-matrix-name { font-size: 10px; fill: var(--tw-fg); }
.tw-matrix-name.tw-selected { font-weight: 700; fill: var(--tw-fg-strong); }
.tw-matrix-frame { fill: none; stroke: var(--tw-border-strong); stroke-width: 1; }
.tw-matrix-cursor { fill: none; stroke: var(--tw-accent); stroke-width: 1.5; pointer-events: none; }
.tw-matrix-column { fill: none; stroke: var(--tw-fg-strong); stroke-width: 1; stroke-dasharray: 3 2; pointer-events: none; }
.tw-matrix-readout { font-size: 11px; color: var(--tw-fg-muted); min-height: 1.4em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
/* a layer change rewrites the list: its fixed size keeps the relayout inside it */
.tw-top-list { list-style: none; margin: 0; padding: 0; font-size: 12px; height: calc(10 * 19px); contain: strict; }
.tw-top-panel, .tw-matrix-panel, .tw-minimap-box { contain: layout paint; }
.tw-top-list li { position: relative; isolation: isolate; display: grid; grid-template-columns: 1.5em 4.2em minmax(0, 1fr) 3.9em minmax(0, 5.4em);
  gap: 4px; align-items: center; height: 19px; padding: 0 3px; border-radius: 2px; cursor: pointer; }
.tw-top-list li:hover, .tw-top-list li:focus-visible { outline: 1px solid var(--tw-border-strong); }
.tw-top-list li > span { overflow: hidden; white-space: pre; text-overflow: ellipsis; }
.tw-top-list li > .tw-top-bar { position: absolute; left: 0; top: 2px; bottom: 2px; z-index: -1; border-radius: 2px;
  background: color-mix(in srgb, var(--tw-accent) 20%, transparent); }
.tw-top-rank { color: var(--tw-fg-muted); }
.tw-top-token { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--tw-fg-strong); }
.tw-top-pos { color: var(--tw-fg-muted); }
.tw-top-region { display: inline-flex; gap: 3px; align-items: center; color: var(--tw-fg-muted); font-size: 11px; }
.tw-top-region .tw-swatch { flex: none; width: 8px; height: 8px; border-radius: 2px; }
.tw-tok.tw-flash { animation: tw-flash 1.6s ease-out; }
@keyframes tw-flash { 0%, 60% { box-shadow: 0 0 0 3px var(--tw-accent); } 100% { box-shadow: 0 0 0 3px transparent; } }
.tw-strip { background: var(--tw-bg); color: var(--tw-fg-strong); white-space: pre-wrap; word-break: break-word;
  font: 12px/1.9 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; max-height: 150px; overflow: auto; position: relative; }
.tw-strip .tw-tok.tw-t { outline: 2px solid var(--tw-accent); outline-offset: 1px; }
.tw-strip .tw-tok.tw-t1 { outline: 2px dashed var(--tw-accent); outline-offset: 1px; }
.tw-strip .tw-tok.tw-touched { background: color-mix(in srgb, var(--tw-warn) 35%, transparent); }
.tw-strip.tw-region-mode .tw-tok:not(.tw-in-region) { opacity: 0.4; }
.tw-strip-panel .tw-panel-header { flex-wrap: wrap; font-size: 12px; }
.tw-mark-t, .tw-mark-t1, .tw-mark-touched { font: 11px ui-monospace, monospace; padding: 0 4px; border-radius: 2px; color: var(--tw-fg-strong); margin-left: 6px; }
.tw-mark-t { outline: 2px solid var(--tw-accent); }
.tw-mark-t1 { outline: 2px dashed var(--tw-accent); }
.tw-mark-touched { background: color-mix(in srgb, var(--tw-warn) 35%, transparent); }
.tw-ablation-panel { margin-top: 8px; }
.tw-ablation-scroll { overflow-x: auto; max-width: 100%; }
.tw-ablation-table { font-size: 12px; }
.tw-ablation-table th { white-space: normal; vertical-align: bottom; max-width: 96px; }
.tw-ablation-table th[colspan] { max-width: none; }
.tw-ablation-table th.tw-sortable { cursor: pointer; user-select: none; }
.tw-ablation-table th.tw-sortable:hover { color: var(--tw-accent); }
.tw-ablation-table th.tw-sorted { color: var(--tw-accent); }
.tw-ablation-table td { white-space: nowrap; vertical-align: middle; padding: 2px 6px; border-bottom: 1px solid var(--tw-grid); }
.tw-ablation-table tbody tr:hover td, .tw-knockout-table tbody tr:hover td { box-shadow: inset 0 1px 0 var(--tw-accent), inset 0 -1px 0 var(--tw-accent); }
.tw-ablation-table tbody tr:focus-visible, .tw-knockout-table tbody tr:focus-visible { outline: 2px solid var(--tw-accent); }
.tw-ablation-table tr.tw-current td.tw-num:first-child { background: var(--tw-accent); color: var(--tw-bg); }
.tw-ablation-table tr.tw-baseline td { color: var(--tw-fg-muted); }
.tw-cond-name { font-weight: 600; color: var(--tw-fg-strong); }
.tw-ablation-table td.tw-cond { min-width: 120px; }
.tw-cond-desc { color: var(--tw-fg-muted); font-size: 11px; white-space: normal; max-width: 210px; }
.tw-changed, .tw-changed .tw-lens-text { color: var(--tw-del); font-weight: 600; }
.tw-ablation-table td.tw-change { text-align: center; min-width: 48px; padding: 2px 3px; border-left: 1px solid var(--tw-bg); }
.tw-change-token { font: 11px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre; max-width: 96px; overflow: hidden; text-overflow: ellipsis; }
.tw-change-value { font-size: 10px; line-height: 1.2; font-variant-numeric: tabular-nums; }
.tw-knockout-section > .tw-curves { flex: 1 1 440px; }
.tw-knockout-section > .tw-knockout { flex: 1 1 420px; overflow-x: auto; }
.tw-knockout .tw-panel-header { flex-wrap: wrap; gap: 2px 8px; }
.tw-knockout .tw-panel-header b { white-space: nowrap; }
.tw-knockout-table td { white-space: nowrap; padding: 3px 6px; vertical-align: middle; }
.tw-knockout-table th { white-space: normal; vertical-align: bottom; }
.tw-knockout-table tr.tw-current td { outline: 1px solid var(--tw-accent); }
.tw-ko-region .tw-swatch { margin-right: 5px; height: 8px; width: 10px; }
.tw-hbar, .tw-dbar { display: inline-block; position: relative; height: 10px; vertical-align: middle; background: var(--tw-bg-raised);
  border: 1px solid var(--tw-border); margin-right: 6px; }
.tw-hbar { width: 60px; }
.tw-dbar { width: 96px; }
.tw-hbar-fill, .tw-dbar-fill { position: absolute; top: 0; bottom: 0; left: 0; }
.tw-dbar::after { content: ""; position: absolute; left: 50%; top: -3px; bottom: -3px; border-left: 1px solid var(--tw-axis); }
.tw-ko-mass-value, .tw-ko-effect-value { display: inline-block; min-width: 4em; }
.tw-ko-region .tw-cond-desc { padding-left: 15px; }
.tw-ablation-explorer { margin-top: 10px; }
.tw-ablation-explorer .tw-panel-header { flex-wrap: wrap; }
.tw-close { margin-left: auto; font: inherit; font-size: 12px; color: inherit; background: none; border: 1px solid var(--tw-border-strong);
  border-radius: 3px; cursor: pointer; padding: 0 6px; }
.tw-not-embedded { white-space: normal; }
.tw-attribution-title .tw-target { color: var(--tw-fg-strong); font-weight: 600; }
.tw-attribution-text { max-height: 420px; }
.tw-attribution-text .tw-tok { padding: 1px 0; }
.tw-attribution-regions { flex: 0 1 auto; min-width: 0; max-width: 100%; overflow-x: auto; align-self: flex-start; }
.tw-attribution-regions .tw-overview-note { max-width: 30em; }
.tw-causal-header { flex-wrap: wrap; gap: 0 8px; }
.tw-causal-header b { white-space: nowrap; }
.tw-region-table td { white-space: nowrap; padding: 2px 6px; vertical-align: middle; }
.tw-region-table tbody tr:hover td { box-shadow: inset 0 1px 0 var(--tw-accent), inset 0 -1px 0 var(--tw-accent); }
.tw-region-table tr.tw-current td { outline: 1px solid var(--tw-accent); font-weight: 600; }
.tw-region-table tbody tr:focus-visible { outline: 2px solid var(--tw-accent); }
.tw-region-table .tw-swatch { margin-right: 5px; height: 8px; width: 10px; }
.tw-share-value { display: inline-block; min-width: 3.5em; }
.tw-gates-body { align-items: flex-start; }
.tw-gates-panel { flex: 0 1 auto; max-width: 100%; }
.tw-gates-scroll { overflow-x: auto; max-width: 100%; }
.tw-gates-grid { border-collapse: collapse; font-size: 10px; color: var(--tw-fg); }
.tw-gates-grid th { font-weight: normal; color: var(--tw-fg-muted); padding: 0 2px; font-variant-numeric: tabular-nums; }
.tw-gates-grid th.tw-gates-layer { width: 18px; min-width: 18px; text-align: center; font-size: 9px; }
.tw-gates-grid th.tw-gates-head { text-align: right; padding-right: 4px; }
.tw-gates-grid td.tw-gate { width: 18px; min-width: 18px; height: 18px; padding: 0; border: 1px solid var(--tw-border); text-align: center;
  font: 600 10px/18px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; cursor: default; }
.tw-gates-grid td.tw-gate:hover { outline: 2px solid var(--tw-fg-strong); outline-offset: -1px; }
.tw-gates-loss { flex: 0 1 320px; min-width: 260px; }
.tw-loss-chart { width: 300px; max-width: 100%; cursor: default; }
.tw-loss-chart .tw-base-loss { stroke: var(--tw-axis); }
.tw-gates-legend { align-items: flex-start; }
.tw-label-chip { display: inline-block; max-width: 36em; }
.tw-label-chip .tw-gate-swatch { vertical-align: middle; margin-right: 4px; }
.tw-loss-chart .tw-line.tw-dim { stroke-opacity: 0.45; }
.tw-label-chip b { font-weight: 600; color: var(--tw-fg-strong); margin-right: 2px; }
.tw-gate-swatch { display: inline-block; flex: none; width: 14px; height: 14px; border: 1px solid var(--tw-border); text-align: center;
  font: 600 10px/14px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.tw-sweep { flex: 0 1 320px; min-width: 260px; }
.tw-sweep-chart { width: 300px; max-width: 100%; cursor: pointer; }
.tw-sweep-bar { fill: color-mix(in srgb, var(--tw-accent) 45%, transparent); stroke: var(--tw-accent); stroke-width: 1; }
.tw-sweep-bar.tw-selected { fill: var(--tw-accent); }
.tw-sweep-bar:hover { stroke-width: 2; }
.tw-prev-table { flex: 1 1 420px; min-width: 0; }
.tw-pairs-table td { cursor: default; }
.tw-pairs-table tr.tw-before td { color: var(--tw-fg-muted); }
.tw-snap-shown { font-size: 13px; color: var(--tw-fg); margin: 0 0 2px; }
.tw-snap-shown b { color: var(--tw-fg-strong); }
.tw-snap-note { max-width: 70em; }
.tw-snap-heat-panel { flex: 1 1 520px; min-width: 0; max-width: 100%; }
.tw-snap-scroll { overflow: auto; max-width: 100%; max-height: 460px; }
.tw-snap-heat { border-collapse: separate; border-spacing: 2px; font-size: 12px; color: var(--tw-fg); }
.tw-snap-heat th { font-weight: 600; color: var(--tw-fg-strong); text-align: left; padding: 1px 6px; white-space: nowrap; }
.tw-snap-heat thead th { position: sticky; top: 0; background: var(--tw-bg); z-index: 1; }
.tw-snap-heat th.tw-snap-msg { font-weight: normal; color: var(--tw-fg); max-width: 30em; overflow: hidden; text-overflow: ellipsis; cursor: pointer; }
.tw-snap-heat tbody tr:hover th.tw-snap-msg { color: var(--tw-fg-strong); text-decoration: underline; }
.tw-snap-index { color: var(--tw-fg-muted); font-variant-numeric: tabular-nums; display: inline-block; min-width: 2.2em; }
.tw-snap-role { display: inline-block; min-width: 5.6em; font-size: 11px; color: var(--tw-fg-muted); }
.tw-snap-role.tw-role-user { color: var(--tw-accent); }
.tw-snap-preview { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 11px; white-space: pre; }
.tw-snap-ref { white-space: nowrap; }
.tw-snap-ref .tw-swatch { width: 10px; height: 10px; margin-right: 5px; vertical-align: middle; }
td.tw-snap-cell { min-width: 4.2em; padding: 3px 8px; border-radius: 2px; cursor: pointer; }
td.tw-snap-cell.tw-best { outline: 2px solid var(--tw-fg-strong); outline-offset: -2px; font-weight: 700; }
.tw-snap-legend { margin-top: 6px; }
.tw-snap-roles { flex: 0 1 360px; min-width: 260px; }
.tw-snap-role-table td { cursor: default; }
.tw-snap-lines { flex: 1 1 100%; }
.tw-snap-line-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 6px 12px; }
.tw-snap-line-box { border: 1px solid transparent; border-radius: 4px; padding: 2px 4px; cursor: pointer; min-width: 0; }
.tw-snap-line-box:hover { border-color: var(--tw-border-strong); }
.tw-snap-line-box.tw-selected { border-color: var(--tw-accent); }
.tw-snap-line-chart, .tw-snap-layer-chart { cursor: pointer; max-width: 100%; }
.tw-snap-layer-chart { width: 420px; cursor: default; margin: 4px 0 6px 18px; }
.tw-snap-dot { stroke: var(--tw-bg); stroke-width: 0.8; }
.tw-snap-details { margin-top: 10px; }
.tw-snap-detail summary { cursor: pointer; font-size: 12px; padding: 1px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tw-snap-closest { color: var(--tw-fg-muted); margin-left: 10px; }
.tw-residual-panel { flex: 1 1 340px; min-width: 260px; max-width: 480px; }
.tw-residual-chart { cursor: pointer; }
.tw-residual-chart .tw-cursor { stroke: var(--tw-axis); stroke-dasharray: 4 3; }
.tw-residual-table-panel { flex: 0 1 auto; }
.tw-residual-table td { cursor: default; }
.tw-residual-table .tw-swatch { vertical-align: middle; }
.tw-identity { margin-top: 4px; max-width: 26em; }
.tw-cross-panel { flex: 0 1 auto; max-width: 100%; }
.tw-cross-grid { border-collapse: collapse; font-size: 9px; color: var(--tw-fg); }
.tw-cross-grid th { font-weight: normal; color: var(--tw-fg-muted); padding: 0 2px; font-variant-numeric: tabular-nums; line-height: 1; }
.tw-cross-grid th.tw-cross-col { width: var(--tw-cell); min-width: var(--tw-cell); padding: 0 0 2px; text-align: center; }
.tw-cross-grid th.tw-cross-row { text-align: right; padding-right: 4px; }
.tw-cross-grid td.tw-cross-cell { width: var(--tw-cell); min-width: var(--tw-cell); height: var(--tw-cell); padding: 0; cursor: pointer; }
.tw-cross-grid td.tw-cross-cell.tw-cross-cursor { box-shadow: inset 0 0 0 1px var(--tw-accent); }
.tw-cross-grid td.tw-cross-cell:hover { outline: 2px solid var(--tw-fg-strong); outline-offset: -1px; }
.tw-cross-profile { flex: 0 1 320px; min-width: 260px; }
.tw-profile-chart { width: 300px; max-width: 100%; cursor: default; }
`;

export function addStyle(root: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
}
