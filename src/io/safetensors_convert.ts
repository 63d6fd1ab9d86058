/**
 * Reading a safetensors tensor as a float type it may not be stored in, never silently losing
 * precision: a conversion is done when it is exact (every value survives), or when the caller
 * names the rounding (`round: true`: to nearest, ties to even); otherwise it throws naming the
 * tensor, the first value that would change and the option.
 *
 * | stored \ wanted | F32 (`Float32Array`)        | BF16 (`Uint16Array` bits)            |
 * | --------------- | --------------------------- | ------------------------------------ |
 * | F32             | as is                       | exact, or rounded with `round`       |
 * | F16             | as is (widened on read)     | exact, or rounded with `round`       |
 * | BF16            | exact (widened)             | as is                                |
 * | F64             | exact, or rounded with `round` | refused: convert to F32 first      |
 * | I64, I32, U8    | refused (not a float type)  | refused                              |
 *
 * @module
 */

import { bf16Round, bf16ToF32, f32ToBf16, firstInexact } from "./float_convert.ts";
import type { SafetensorsEntry } from "./safetensors.ts";

/** Float types a tensor can be read as. */
export type FloatTarget = "F32" | "BF16";

/** Options of {@link readEntryAs}. */
export interface ReadEntryAsOptions {
  /** Name of the tensor in messages. */
  name?: string;
  /** Allow rounding to the wanted precision (nearest, ties to even). Without it a conversion that
   * would change any value throws. */
  round?: boolean;
}

/** The values of `entry` as f32 (see the module's table). */
export function readEntryAs(
  entry: SafetensorsEntry,
  target: "F32",
  options?: ReadEntryAsOptions,
): Float32Array;
/** The values of `entry` as bfloat16 bits (see the module's table). */
export function readEntryAs(
  entry: SafetensorsEntry,
  target: "BF16",
  options?: ReadEntryAsOptions,
): Uint16Array;
export function readEntryAs(
  entry: SafetensorsEntry,
  target: FloatTarget,
  options: ReadEntryAsOptions = {},
): Float32Array | Uint16Array {
  const what = `Cannot read tensor${
    options.name ? ` '${options.name}'` : ""
  } (${entry.dtype}) as ${target}`;
  const inexact = (values: ArrayLike<number>, round: (v: number) => number) => {
    if (options.round) return;
    const i = firstInexact(values, round);
    if (i >= 0) {
      throw new RangeError(
        `${what}: value ${values[i]} at index ${i} is not exactly a ${target} value ` +
          `(pass { round: true } to round to the nearest ${target})`,
      );
    }
  };
  const { dtype, data } = entry;
  if (dtype === "I64" || dtype === "I32" || dtype === "U8") {
    throw new TypeError(`${what}: it holds integers, not floats`);
  }
  if (target === "F32") {
    if (dtype === "BF16") return bf16ToF32(data as Uint16Array);
    if (dtype === "F64") {
      inexact(data as Float64Array, Math.fround);
      return Float32Array.from(data as Float64Array);
    }
    return data as Float32Array; // F32, and F16 widened on read
  }
  if (dtype === "BF16") return data as Uint16Array;
  if (dtype === "F64") {
    throw new TypeError(
      `${what}: F64 to BF16 is not converted in one step; read it as F32 first (exact or rounded), then convert with f32ToBf16`,
    );
  }
  inexact(data as Float32Array, bf16Round);
  return f32ToBf16(data as Float32Array);
}
