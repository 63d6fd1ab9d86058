/**
 * What the sides of the training-path benchmark (`bench/train_path.ts`) read for a case: the run
 * lengths, the images a run trains on, the case's preset overrides (plain BatchNorm, no teacher
 * shuffle, as `caseConfig`), for a cifar10 case a synthetic CIFAR-10 in the real binary format
 * (`bench/synthetic_cifar.ts`; CIFAR-10 is not on the machine and a step's time does not depend on
 * the pixel values) and the configuration `train_path_torch.py --config` builds PyTorch's side from.
 *
 * @module
 */

import { caseConfig, type StepCase, torchStepConfig } from "./step_cases.ts";
import { writeSyntheticCifar10 } from "./synthetic_cifar.ts";

/** Steps of the short and the long run of ours. */
export const SHORT = 2, LONG = 8;

/** Images the runs train on: enough full batches that no run reaches the end of an epoch. */
export function limitFor(c: StepCase): number {
  return c.batch * (LONG + 2);
}

/** What a case's runs read, made once per case in its temp folder by {@link caseInputs}. */
export interface CaseInputs {
  /** A JSON file of the case's overrides of its preset (plain BatchNorm, no teacher shuffle). */
  config: string;
  /** cifar10 cases: the folder holding the synthetic `cifar-10-batches-bin/`. */
  cifar?: string;
}

/**
 * Writes case `c`'s inputs (see {@link CaseInputs}) into folder `tmp`. Ours reads them through
 * `--config` and `--data`, PyTorch's through `--cifar`.
 */
export async function caseInputs(c: StepCase, tmp: string): Promise<CaseInputs> {
  const cfg = caseConfig(c);
  const config = `${tmp}/case_config.json`;
  // The cifar10 preset's own are SplitBN 8 with the teacher shuffle; PyTorch's side has neither.
  const ressl = { bnSplits: cfg.ressl.bnSplits, shuffleTeacher: cfg.ressl.shuffleTeacher };
  await Deno.writeTextFile(config, JSON.stringify({ ressl }));
  if (c.preset !== "cifar10") return { config };
  // data_batch_1 holds every image a run trains on (--limit takes the first ones); the reader
  // needs the other files too, which stay small.
  const cifar = await writeSyntheticCifar10(`${tmp}/data`, {
    first: limitFor(c),
    others: c.batch,
    test: c.batch,
  });
  return { config, cifar };
}

/**
 * The case's configuration for `train_path_torch.py --config` (cifar10 cases): `bench/step_torch.py`'s
 * keys plus the schedule's epochs and lr scaling and the views' Normalize.
 */
export function torchCaseConfig(c: StepCase): Record<string, unknown> {
  const cfg = caseConfig(c);
  return {
    ...torchStepConfig(cfg, 2),
    epochs: cfg.epochs,
    scaleLr: cfg.optim.scaleLr,
    mean: cfg.image.mean,
    std: cfg.image.std,
  };
}

/** Which data the cases of a table read, for its section text. */
export function dataNote(cases: StepCase[]): string {
  const note = (c: StepCase) =>
    c.preset === "cifar10"
      ? `${c.id}: a synthetic CIFAR-10 in the real binary format (Philox bytes, first ${
        limitFor(c)
      } images; pixel values do not change a step's time)`
      : `${c.id}: the first ${limitFor(c)} Fashion-MNIST training images`;
  return cases.map(note).join("; ");
}
