/**
 * Choosing a cuDNN convolution algorithm from the performance records cuDNN returns
 * (`cudnnGet*Algorithm_v7` heuristics or `cudnnFind*AlgorithmEx` measurements): the fastest one
 * that succeeded and whose workspace fits the limit.
 *
 * @module
 */

import { CUDNN_DETERMINISM, CUDNN_PERF } from "./cudnn_symbols.ts";

/** One `cudnnConvolution*AlgoPerf_t` record. */
export interface AlgoPerf {
  /** The algorithm enum of its direction. */
  readonly algo: number;
  /** `cudnnStatus_t` of this algorithm for the problem (0: usable). */
  readonly status: number;
  /** Measured milliseconds (Find), or what the heuristic reports (-1 or 0 when not measured). */
  readonly time: number;
  /** Workspace bytes it needs. */
  readonly memory: number;
  /** `CUDNN_DETERMINISM`. */
  readonly determinism: number;
  /** `cudnnMathType_t` it runs with. */
  readonly mathType: number;
}

/** Reads `count` perf records from the buffer cuDNN filled. */
export function parsePerfs(bytes: Uint8Array, count: number): AlgoPerf[] {
  if (count * CUDNN_PERF.size > bytes.byteLength) {
    throw new RangeError(`Cannot read ${count} cuDNN perf records from ${bytes.byteLength} bytes`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AlgoPerf[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * CUDNN_PERF.size;
    out.push({
      algo: v.getInt32(at + CUDNN_PERF.algo, true),
      status: v.getInt32(at + CUDNN_PERF.status, true),
      time: v.getFloat32(at + CUDNN_PERF.time, true),
      memory: Number(v.getBigUint64(at + CUDNN_PERF.memory, true)),
      determinism: v.getInt32(at + CUDNN_PERF.determinism, true),
      mathType: v.getInt32(at + CUDNN_PERF.mathType, true),
    });
  }
  return out;
}

/** Options of {@link chooseAlgorithm}. */
export interface ChooseOptions {
  /** The largest workspace allowed, in bytes. */
  workspaceLimit: number;
  /** Only deterministic algorithms. */
  deterministic?: boolean;
  /**
   * `measured`: order by `time` (Find results); `ranked`: keep cuDNN's order (heuristic results are
   * sorted by expected speed).
   */
  order: "measured" | "ranked";
}

/**
 * The fastest usable record (status 0, workspace within the limit, deterministic if asked), or a
 * description of why none is usable.
 */
export function chooseAlgorithm(
  perfs: readonly AlgoPerf[],
  opts: ChooseOptions,
): { ok: true; perf: AlgoPerf } | { ok: false; reason: string } {
  const usable = perfs.filter((p) => p.status === 0);
  if (usable.length === 0) {
    return { ok: false, reason: `cuDNN reports no algorithm that supports this problem` };
  }
  const allowed = usable.filter((p) =>
    !opts.deterministic || p.determinism === CUDNN_DETERMINISM.DETERMINISTIC
  );
  if (allowed.length === 0) {
    return { ok: false, reason: "no deterministic algorithm supports this problem" };
  }
  const fitting = allowed.filter((p) => p.memory <= opts.workspaceLimit);
  if (fitting.length === 0) {
    const least = Math.min(...allowed.map((p) => p.memory));
    return {
      ok: false,
      reason: `every algorithm needs more workspace than the limit of ${opts.workspaceLimit} ` +
        `bytes (the smallest needs ${least})`,
    };
  }
  const ranked = opts.order === "measured"
    ? [...fitting].sort((a, b) => a.time - b.time || a.memory - b.memory)
    : fitting;
  return { ok: true, perf: ranked[0] };
}
