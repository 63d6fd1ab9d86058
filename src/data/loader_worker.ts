/**
 * The loader's Web Worker: receives u8 batches, returns their augmented views. Pure computation: it
 * opens no file and keeps no state beyond its configuration and scratch memory.
 *
 * @module
 */

import { augmentBatch, AugmentWorkspace, type ViewPipeline } from "./augment.ts";
import type { RngKey } from "../random/philox.ts";

/** Configuration sent once, before any job. */
export interface WorkerInit {
  type: "init";
  views: ViewPipeline[];
  key: RngKey;
  height: number;
  width: number;
  channels: number;
}

/** One batch to augment. */
export interface WorkerJob {
  type: "job";
  id: number;
  epoch: number;
  indices: Int32Array;
  images: Uint8Array;
}

/** The reply to a job: its views, or the error that stopped it. */
export type WorkerReply =
  | { type: "done"; id: number; views: Float32Array[] }
  | { type: "failed"; id: number; message: string };

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerInit | WorkerJob>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;
let init: WorkerInit | undefined;
const ws = new AugmentWorkspace();

scope.onmessage = (e) => {
  const msg = e.data;
  if (msg.type === "init") {
    init = msg;
    return;
  }
  try {
    if (!init) throw new Error("loader worker got a job before its configuration");
    const views = augmentBatch({
      images: msg.images,
      height: init.height,
      width: init.width,
      channels: init.channels,
      indices: msg.indices,
      epoch: msg.epoch,
      key: init.key,
      views: init.views,
      ws,
    });
    scope.postMessage(
      { type: "done", id: msg.id, views },
      views.map((v) => v.buffer as ArrayBuffer),
    );
  } catch (err) {
    scope.postMessage({
      type: "failed",
      id: msg.id,
      message: (err as Error).message ?? String(err),
    });
  }
};
