/** A training checkpoint of a freshly initialised tiny network, for the plot command tests. */

import { join } from "node:path";
import { createBackend } from "../../src/backend/select.ts";
import { checkpointName } from "../../src/io/checkpoint.ts";
import { presetConfig } from "../../src/ressl/config.ts";
import { initTrainState } from "../../src/ressl/state.ts";
import { saveTrainCheckpoint } from "../../src/ressl/checkpoint.ts";
import { disposeTrainState } from "../../src/ressl/step.ts";
import { createContext } from "../../src/tensor/mod.ts";

/** Writes `checkpoint-<step>.safetensors` of a width-4 Fashion-MNIST ResNet-18 into `dir`. */
export async function writeTinyCheckpoint(dir: string, step = 12): Promise<string> {
  const config = presetConfig("fashion-mnist");
  config.model.width = 4;
  config.ressl.queueSize = 64;
  config.batchSize = 32;
  const backend = createBackend("reference");
  try {
    const ctx = createContext(backend);
    const state = initTrainState(ctx, config);
    const path = join(dir, checkpointName(step));
    await saveTrainCheckpoint(path, { ...state, step }, {
      epoch: 1,
      config,
      dataset: { name: "fashion-mnist/train", length: 192 },
    });
    disposeTrainState(state);
    return path;
  } finally {
    backend.dispose();
  }
}
