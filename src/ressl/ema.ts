/**
 * The teacher as an exponential moving average of the student (RESSL_SPEC §4, §9):
 * `theta_t = m * theta_t + (1 - m) * theta_s` over the **parameters** only.
 *
 * BatchNorm running statistics are not averaged: as in the official code (MoCo-style
 * `_momentum_update_key_encoder` zips `encoder_q.parameters()` with `encoder_k.parameters()`), the
 * teacher's running mean/var are its own buffers, updated by its own training-mode forward on the
 * weak view. solo-learn's `MomentumUpdater` does the same.
 *
 * Two momentum schedules:
 * - `constant` (official code): fixed m, applied at the **start** of each step, before the teacher
 *   forward;
 * - `cosine` (solo-learn): `m(k) = final - (final - base) * (cos(pi k / K) + 1) / 2` (final 1, so
 *   `1 - (1 - base) * (cos(pi k / K) + 1) / 2`), applied **after** the optimiser step; step k
 *   (0-based) uses m(k), so the first update uses `base`.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { flattenTree, mapTree, type TensorTree } from "../tensor/tree.ts";

/** The teacher momentum schedule. */
export type EmaSchedule =
  | { kind: "constant"; momentum: number }
  | { kind: "cosine"; base: number; final?: number; totalSteps: number };

/** When in a step the EMA runs. */
export type EmaTiming = "start" | "end";

function checkMomentum(name: string, m: number): void {
  if (!(Number.isFinite(m) && m >= 0 && m <= 1)) {
    throw new RangeError(`Cannot update the teacher: ${name} is ${m} but must be in [0, 1]`);
  }
}

/** solo-learn's cosine momentum at step `step` of `totalSteps`, from `base` to `final` (1). */
export function cosineMomentum(step: number, totalSteps: number, base: number, final = 1): number {
  checkMomentum("the base momentum", base);
  checkMomentum("the final momentum", final);
  if (!Number.isInteger(totalSteps) || totalSteps < 1 || !Number.isInteger(step) || step < 0) {
    throw new RangeError(
      `Cannot compute the EMA momentum at step ${step} of ${totalSteps}: expected integers ` +
        `step >= 0 and totalSteps >= 1`,
    );
  }
  return final - (final - base) * (Math.cos(Math.PI * step / totalSteps) + 1) / 2;
}

/** The momentum m of step `step` (0-based) under `schedule`. */
export function emaMomentum(schedule: EmaSchedule, step: number): number {
  if (schedule.kind === "constant") {
    checkMomentum("the momentum", schedule.momentum);
    return schedule.momentum;
  }
  return cosineMomentum(step, schedule.totalSteps, schedule.base, schedule.final ?? 1);
}

/** Where each schedule's source applies it: constant at the start, cosine after the update. */
export function emaTiming(schedule: EmaSchedule): EmaTiming {
  return schedule.kind === "constant" ? "start" : "end";
}

/**
 * A new teacher tree `m * teacher + (1 - m) * student`, leaf by leaf (matched by path), made by one
 * `emaUpdateMulti` kernel over every leaf. Inputs are neither modified nor disposed. Pass
 * parameter trees only (not BatchNorm buffers).
 */
export function emaUpdate<P extends TensorTree>(teacher: P, student: P, momentum: number): P {
  checkMomentum("the momentum", momentum);
  const s = new Map(flattenTree(student));
  const t = flattenTree(teacher);
  if (s.size !== t.length) {
    throw new Error(
      `Cannot update the teacher: it has ${t.length} parameters but the student has ${s.size}`,
    );
  }
  const pairs = t.map(([path, tt]) => {
    const st = s.get(path);
    if (!st || st.size !== tt.size || st.dtype !== "f32" || tt.dtype !== "f32") {
      throw new Error(
        `Cannot update the teacher parameter '${path}' [${tt.shape}]: the student has ` +
          (st ? `${st.dtype} [${st.shape}]` : "no such parameter"),
      );
    }
    return { path, teacher: tt, student: st, out: tt.ctx.empty(tt.shape) };
  });
  if (pairs.length > 0) {
    pairs[0].teacher.backend.emaUpdateMulti({
      teacher: pairs.map((p) => p.teacher.storage),
      student: pairs.map((p) => p.student.storage),
      out: pairs.map((p) => p.out.storage),
      momentum,
    });
  }
  const outs = new Map(pairs.map((p) => [p.path, p.out]));
  return mapTree(teacher, (_t: Tensor, path) => outs.get(path)!);
}
