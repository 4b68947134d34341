// Build the widget bundles into ../tealeaves_widgets/static/ and copy the
// scripts an exported page inlines (require.js, the html-manager), so Python
// finds every asset in its own package and no page loads one from a CDN.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const out = resolve(root, "../tealeaves_widgets/static");
const require = createRequire(import.meta.url);

export const ENTRIES = ["heatmap", "explorer", "curves_view", "lens_view", "variant_diff", "aggregate_view", "ablation_view", "attribution_view", "head_gates_view", "head_atlas_view", "prev_token_view", "generation_view", "snapshots_view", "residual_view", "cross_layer_view", "head_grid_view", "neuron_view"];

mkdirSync(join(out, "vendor"), { recursive: true });
await esbuild.build({
  entryPoints: ENTRIES.map((name) => join(root, "src", `${name}.ts`)),
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !process.argv.includes("--dev"),
  sourcemap: false,
  legalComments: "none",
  // anywidget imports the bundle as an ES module, but a page that also runs
  // require.js (the html-manager) must not see an AMD define from it
  define: { "define.amd": "false" },
  logLevel: "info",
});

const vendor = {
  "require.js": require.resolve("requirejs/require.js"),
  "html-manager-embed-amd.js": join(dirname(require.resolve("@jupyter-widgets/html-manager/package.json")), "dist", "embed-amd.js"),
};
for (const [name, source] of Object.entries(vendor)) copyFileSync(source, join(out, "vendor", name));
console.log(`copied ${Object.keys(vendor).join(", ")} into ${join(out, "vendor")}`);
