/**
 * Plots: training curves of a run folder (`curves.svg` / `curves.png`), and 2-D maps of embeddings
 * coloured by label (exact t-SNE). Charts are Vega-Lite specifications rendered to SVG by Vega and
 * to PNG by resvg; both are imported on first use, so importing this module loads nothing.
 *
 * @module
 */
export * from "./render.ts";
export * from "./curves.ts";
export * from "./tsne.ts";
export * from "./embedding_map.ts";
export * from "./checkpoint_map.ts";
