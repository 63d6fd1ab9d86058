/**
 * `train --init <file>`: start a run from a backbone in a torchvision-named safetensors file (the
 * output of `deno task export`, or a converted PyTorch state dict). The file's tensors replace the
 * student's backbone parameters and BN statistics, and the teacher starts as a copy of them (as it
 * does of a fresh student); the heads, the queue and the optimiser state are kept.
 *
 * `num_batches_tracked` counters and `fc.*` entries in the file are ignored; every other entry must
 * belong to the backbone, and every backbone tensor must be in the file with the same shape.
 *
 * @module
 */

import { isTorchvisionExtra } from "../eval/backbone_io.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { loadTreeLike, TensorEntryError } from "../io/tree_io.ts";
import type { ResNetBuffers, ResNetParams } from "../nn/mod.ts";
import type { TrainState } from "../ressl/step.ts";
import {
  cloneTree,
  type Context,
  disposeTree,
  flattenTree,
  type TensorTree,
} from "../tensor/mod.ts";

/**
 * Returns `state` with the backbone of the student and of the teacher loaded from `path`. It
 * consumes `state`: the replaced backbone tensors are disposed, every other tensor moves to the
 * result. Only a fresh state (step 0) is accepted. Errors read `Cannot load --init weights
 * '<path>': ...`; on an error `state` is left untouched.
 *
 * ```ts
 * let state = initTrainState(ctx, config);
 * if (initPath) state = await loadBackboneInit(ctx, state, initPath);
 * ```
 */
export async function loadBackboneInit(
  ctx: Context,
  state: TrainState,
  path: string,
): Promise<TrainState> {
  const what = `Cannot load --init weights '${path}'`;
  if (state.step !== 0) {
    throw new Error(
      `${what}: the training state is at step ${state.step}; initial weights apply to a fresh run (do not combine --init with --resume)`,
    );
  }
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    const msg = (e as Error).message.replace(`Cannot read safetensors file '${path}': `, "");
    throw new Error(`${what}: ${msg}`, { cause: e });
  }
  const student = state.student;
  const loaded = ctx.scope(() => {
    try {
      const opts = { strict: false, source: path };
      const params = loadTreeLike(
        ctx,
        student.params.backbone as unknown as TensorTree,
        file.tensors,
        opts,
      ) as unknown as ResNetParams;
      const buffers = loadTreeLike(
        ctx,
        student.buffers as unknown as TensorTree,
        file.tensors,
        opts,
      ) as unknown as ResNetBuffers;
      return { params, buffers };
    } catch (e) {
      const why = e instanceof TensorEntryError
        ? `tensor '${e.tensor}' ${e.why}`
        : (e as Error).message;
      throw new Error(`${what}: ${why}`, { cause: e });
    }
  });
  const known = new Set([
    ...flatNames(student.params.backbone as unknown as TensorTree),
    ...flatNames(student.buffers as unknown as TensorTree),
  ]);
  const extra = Object.keys(file.tensors).filter((k) => !known.has(k) && !isTorchvisionExtra(k));
  if (extra.length > 0) {
    disposeTree(loaded as unknown as TensorTree);
    throw new Error(
      `${what}: ${extra.length} entr${extra.length === 1 ? "y does" : "ies do"} not belong to ` +
        `this run's backbone (${
          extra.slice(0, 3).map((k) => `'${k}'`).join(", ")
        }); check --width, --preset and the depth`,
    );
  }
  const teacher = ctx.scope(() => ({
    params: cloneTree(loaded.params),
    buffers: cloneTree(loaded.buffers),
  }));
  for (
    const tree of [
      state.student.params.backbone,
      state.student.buffers,
      state.teacher.params.backbone,
      state.teacher.buffers,
    ]
  ) disposeTree(tree as unknown as TensorTree);
  return {
    ...state,
    student: {
      params: { ...state.student.params, backbone: loaded.params },
      buffers: loaded.buffers,
    },
    teacher: {
      params: { ...state.teacher.params, backbone: teacher.params },
      buffers: teacher.buffers,
    },
  };
}

function flatNames(tree: TensorTree): string[] {
  return flattenTree(tree).map(([path]) => path);
}
