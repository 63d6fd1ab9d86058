/**
 * Rendering of charts: a Vega-Lite specification is compiled to Vega and rendered headless to SVG
 * (`renderer: "none"`), and an SVG is rasterised to PNG by resvg. Both libraries are imported on
 * first use, so importing this module loads nothing; PNG output needs `--allow-ffi --allow-sys
 * --allow-env --allow-read` (resvg is a native addon).
 *
 * @module
 */

import { extname } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";

/** A Vega-Lite specification (plain JSON object, `$schema` optional). */
export type VegaLiteSpec = Record<string, unknown>;

/** The font family charts ask for; resvg falls back to it for generic families too. */
export const CHART_FONT = "DejaVu Sans";

/** Options of {@link svgToPng}. */
export interface SvgToPngOptions {
  /** Pixels per SVG unit (default 2, for sharp text). */
  scale?: number;
  /** Background colour (default white). */
  background?: string;
}

/** Renders a Vega-Lite specification to an SVG document. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const [vega, vl] = await Promise.all([
    // deno-lint-ignore no-import-prefix -- mod.ts must import by URL without the project's import map
    import("npm:vega@6.4.0"),
    // deno-lint-ignore no-import-prefix -- as above
    import("npm:vega-lite@6.5.0"),
  ]);
  const full = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    ...spec,
    config: { font: CHART_FONT, ...(spec.config as object | undefined) },
  };
  let compiled;
  try {
    // deno-lint-ignore no-explicit-any
    compiled = vl.compile(full as any).spec;
  } catch (e) {
    throw new Error(`Cannot compile the chart specification: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG document to PNG bytes (resvg, system fonts). */
export async function svgToPng(svg: string, options: SvgToPngOptions = {}): Promise<Uint8Array> {
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 16)) {
    throw new RangeError(`Cannot rasterise a chart at scale ${scale}: expected (0, 16]`);
  }
  let resvg;
  try {
    // deno-lint-ignore no-import-prefix -- mod.ts must import by URL without the project's import map
    resvg = await import("npm:@resvg/resvg-js@2.6.2");
  } catch (e) {
    throw new Error(
      `Cannot load resvg to write PNG files (run with --allow-ffi --allow-sys --allow-env --allow-read): ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  const r = new resvg.Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: options.background ?? "white",
    font: {
      loadSystemFonts: true,
      defaultFontFamily: CHART_FONT,
      sansSerifFamily: CHART_FONT,
    },
  });
  return r.render().asPng();
}

/** Width and height (SVG units) of an SVG document's root element. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0];
  const w = root && /\bwidth="([\d.]+)"/.exec(root);
  const h = root && /\bheight="([\d.]+)"/.exec(root);
  if (!w || !h) {
    throw new Error("Cannot read the size of an SVG document: no width/height on <svg>");
  }
  return { width: Number(w[1]), height: Number(h[1]) };
}

/** Throws unless every path ends in `.svg` or `.png` (case-insensitive). */
export function checkChartPaths(paths: readonly string[]): void {
  for (const path of paths) {
    const ext = extname(path).toLowerCase();
    if (ext !== ".svg" && ext !== ".png") {
      throw new Error(`Cannot write chart '${path}': the file name must end in .svg or .png`);
    }
  }
}

/**
 * Renders `spec` and writes it atomically to each path of `out`, as SVG or PNG by extension
 * (`.svg`, `.png`). Returns the paths written, SVG ones and PNG ones.
 */
export async function writeChart(
  spec: VegaLiteSpec,
  out: readonly string[],
  options: SvgToPngOptions = {},
): Promise<{ svg: string[]; png: string[] }> {
  checkChartPaths(out);
  const svgText = await renderSvg(spec);
  const written = { svg: [] as string[], png: [] as string[] };
  let png: Uint8Array | undefined;
  for (const path of out) {
    if (extname(path).toLowerCase() === ".svg") {
      await writeFileAtomic(path, svgText);
      written.svg.push(path);
    } else {
      png ??= await svgToPng(svgText, options);
      await writeFileAtomic(path, png);
      written.png.push(path);
    }
  }
  return written;
}
