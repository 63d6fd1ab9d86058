/**
 * `augmentViews` of the cpu backend: the views are made on the host buffers behind the storages by
 * the one TypeScript implementation of a view (`applyViewParams`, shared with the data layer and
 * the reference backend), after every parameter row has been checked against the source image.
 * A bf16 output is the f32 result rounded to nearest even (as `bf16.ts`).
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { checkAugmentParamRow, decodeAugmentParams } from "../augment_layout.ts";
import { applyViewParams, AugmentWorkspace, type ViewRecipe } from "../../image/view.ts";
import { f32BitsToBf16 } from "./cast.ts";
import type { CpuRuntime } from "./runtime.ts";
import { cpu } from "./validate.ts";

/** `augmentViews` on the storages of a validated call. */
export function augmentViews(rt: CpuRuntime, o: Opts<"augmentViews">): void {
  const { n, h, w, c, size } = o.geom;
  if (n === 0) return;
  const params = rt.plain(cpu(o.params)).f32;
  for (let i = 0; i < n; i++) checkAugmentParamRow("augmentViews", params, i, h, w);
  const images = rt.plain(cpu(o.images)).u8;
  const recipe: ViewRecipe = {
    size,
    steps: o.steps,
    blurKernel: o.blurKernel,
    mean: o.mean,
    std: o.std,
  };
  const per = c * size * size;
  const outS = cpu(o.out);
  const outBuf = rt.output(outS, rt.mds.plain([n * per], outS.dataType));
  const bf16 = outS.dtype === "bf16";
  const out = bf16 ? new Float32Array(n * per) : outBuf.f32;
  const ws = new AugmentWorkspace();
  for (let i = 0; i < n; i++) {
    const image = { data: images, offset: i * h * w * c, height: h, width: w, channels: c };
    applyViewParams(recipe, decodeAugmentParams(params, i), image, out, i * per, ws);
  }
  if (bf16) f32BitsToBf16(new Uint32Array(out.buffer), outBuf.u16, n * per);
}
