/**
 * A 2-D map of embeddings coloured by label: exact t-SNE of the feature rows, drawn as a scatter
 * plot (one colour per class, legend with the class names) and written as SVG and/or PNG.
 *
 * @module
 */

import { checkChartPaths, type SvgToPngOptions, type VegaLiteSpec, writeChart } from "./render.ts";
import { tsne, type TsneOptions } from "./tsne.ts";

/** Options of {@link embeddingMap}. */
export interface EmbeddingMapOptions extends TsneOptions, SvgToPngOptions {
  /** Feature rows [N, dim], row-major. */
  features: ArrayLike<number>;
  /** Feature dimension (columns of `features`). */
  dim: number;
  /** Class index per row (`-1`: no label). */
  labels: ArrayLike<number>;
  /** Class names by index (default: the index as text). */
  classes?: readonly string[];
  /** Output file(s): `.svg` and/or `.png`. */
  out: string | readonly string[];
  /** Chart title (default "t-SNE of N embeddings"). */
  title?: string;
  /** A second, smaller title line. */
  subtitle?: string;
}

/** What {@link embeddingMap} returns. */
export interface EmbeddingMapResult {
  /** The 2-D map [N, 2], row-major. */
  coords: Float64Array;
  /** Final KL divergence of the t-SNE. */
  kl: number;
  /** Paths written. */
  svg: string[];
  /** PNG files written. */
  png: string[];
}

/** Ten well-separated colours (Tableau 10), then Tableau 20 for up to 20 classes. */
const TABLEAU10 = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

/** The name shown for a label. */
function className(label: number, classes?: readonly string[]): string {
  if (label < 0) return "(no label)";
  return classes?.[label] ?? String(label);
}

/** The Vega-Lite scatter specification of a 2-D map with labels. */
export function embeddingMapSpec(
  coords: Float64Array,
  labels: ArrayLike<number>,
  options: { classes?: readonly string[]; title: string; subtitle?: string },
): VegaLiteSpec {
  const n = labels.length;
  const used = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  const domain = used.map((l) => className(l, options.classes));
  const scale = used.length <= 10
    ? { domain, range: used.map((l, i) => l < 0 ? "#bbbbbb" : TABLEAU10[i % 10]) }
    : { domain, scheme: used.length <= 20 ? "tableau20" : "turbo" };
  const values = Array.from({ length: n }, (_, i) => ({
    x: coords[2 * i],
    y: coords[2 * i + 1],
    label: className(labels[i], options.classes),
  }));
  return {
    title: {
      text: options.title,
      anchor: "start",
      fontSize: 15,
      ...(options.subtitle ? { subtitle: options.subtitle, subtitleFontSize: 12 } : {}),
    },
    width: 460,
    height: 460,
    data: { values },
    mark: { type: "circle", size: n > 1000 ? 14 : 26, opacity: 0.8 },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        axis: null,
        scale: { zero: false, nice: false, padding: 12 },
      },
      y: {
        field: "y",
        type: "quantitative",
        axis: null,
        scale: { zero: false, nice: false, padding: 12 },
      },
      color: {
        field: "label",
        type: "nominal",
        title: "class",
        scale,
        legend: { symbolOpacity: 1, labelLimit: 200 },
      },
    },
    config: { view: { stroke: "#ccc" } },
  };
}

/**
 * Embeds `features` in 2-D with t-SNE and draws the map coloured by `labels` into `out` (SVG and/or
 * PNG by extension, written atomically). Throws when the labels do not match the rows.
 */
export async function embeddingMap(options: EmbeddingMapOptions): Promise<EmbeddingMapResult> {
  const { features, dim, labels } = options;
  const n = Math.floor(features.length / Math.max(1, dim));
  if (!(dim >= 1) || n * dim !== features.length) {
    throw new RangeError(
      `Cannot draw an embedding map: ${features.length} feature values are not rows of dimension ${dim}`,
    );
  }
  if (labels.length !== n) {
    throw new RangeError(
      `Cannot draw an embedding map: ${labels.length} labels for ${n} feature rows`,
    );
  }
  const out = typeof options.out === "string" ? [options.out] : options.out;
  if (out.length === 0) throw new Error("Cannot draw an embedding map: no output file given");
  checkChartPaths(out);
  const { coords, kl } = tsne(features, n, dim, options);
  const spec = embeddingMapSpec(coords, labels, {
    classes: options.classes,
    title: options.title ?? `t-SNE of ${n} embeddings`,
    subtitle: options.subtitle,
  });
  const written = await writeChart(spec, out, options);
  return { coords, kl, ...written };
}
