/**
 * The sides of `bench/train_path.ts` that are not our training run, each a fresh process timing
 * steps 3-8 (`SHORT`+1..`LONG`): our isolated step (pre-made tensors), PyTorch's training path
 * (its DataLoader loop, `bench/train_path_torch.py`) and PyTorch's isolated step
 * (`bench/step_torch.py` through {@link TorchPeer}, pre-made tensors), so the training-path phase
 * can compare our training path with PyTorch's step side by side.
 *
 * @module
 */

import { caseConfig, type StepCase, torchStepConfig } from "./step_cases.ts";
import { type CaseInputs, limitFor, LONG, SHORT, torchCaseConfig } from "./train_path_inputs.ts";
import type { PeerSpec } from "./peers.ts";
import type { ProfileRunOptions } from "./profile_run.ts";
import { profileRunChild } from "./profile_children.ts";
import { TorchPeer } from "./step_peer.ts";

const TORCH_SCRIPT = new URL("./train_path_torch.py", import.meta.url).pathname;
/**
 * Seconds per step of our isolated step (pre-made tensors, as bench/step.ts) of case `id`, in a
 * child process without the kernel timer: steps 3-8, as the training path's.
 */
export async function isolatedRun(id: string): Promise<number[]> {
  const o: ProfileRunOptions = {
    case: id,
    mode: "isolated",
    data: "synthetic",
    steps: LONG - SHORT,
    warmup: SHORT,
    workers: 0,
    threads: 2,
    plain: true,
  };
  const res = await profileRunChild(o);
  return res.steps.map((t) => t.wallMs / 1000);
}

/** Seconds of each measured step (3-8) of PyTorch's training path. */
export async function torchRun(c: StepCase, inputs: CaseInputs, p: PeerSpec): Promise<number[]> {
  const args = [
    TORCH_SCRIPT,
    "--width",
    String(c.width),
    "--batch-size",
    String(c.batch),
    "--limit",
    String(limitFor(c)),
    "--warmup",
    String(SHORT),
    "--steps",
    String(LONG - SHORT),
    "--threads",
    "2",
    "--workers",
    "1",
    ...(p.channelsLast ? ["--channels-last"] : []),
    ...(inputs.cifar
      ? ["--cifar", inputs.cifar, "--config", JSON.stringify(torchCaseConfig(c))]
      : []),
  ];
  const r = await new Deno.Command(p.python, { args, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout).trim().split("\n").at(-1) ?? "";
  if (!r.success) {
    throw new Error(
      `Cannot measure PyTorch's training path (${p.python} ${args.join(" ")}): exit ${r.code}: ${
        new TextDecoder().decode(r.stderr).slice(-800)
      }`,
    );
  }
  return JSON.parse(out).times as number[];
}

/**
 * Seconds of steps 3-8 of PyTorch's isolated step (pre-made tensors, the case's configuration,
 * 2 threads) in a fresh peer process: `SHORT` warm-up steps, then `LONG - SHORT` measured.
 */
export async function torchStepRun(c: StepCase, p: PeerSpec): Promise<number[]> {
  const config = { ...torchStepConfig(caseConfig(c), 2), channelsLast: p.channelsLast };
  const peer = await TorchPeer.start(config, p.python);
  try {
    await peer.run(SHORT);
    return (await peer.run(LONG - SHORT)).times;
  } finally {
    await peer.close();
  }
}
