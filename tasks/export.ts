/**
 * `deno task export`: writes the backbone of a training checkpoint as a torchvision `state_dict`
 * in safetensors (torchvision names and layouts, `num_batches_tracked` = steps trained), so that
 * `model.load_state_dict(sd, strict=True)` works on a torchvision ResNet with the same stem.
 *
 * Loading it in PyTorch (details and other widths/stems: docs/export.md):
 *
 * ```python
 * import torch, torchvision
 * from safetensors.torch import load_file
 * sd = load_file("backbone.safetensors")
 * model = torchvision.models.resnet18()
 * # CIFAR stem (presets cifar10/cifar100/fashion-mnist/stl10/tinyimagenet): 3x3/1 conv1 ...
 * model.conv1 = torch.nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
 * model.maxpool = torch.nn.Identity()  # ... and no max-pool unless the preset has one (stl10)
 * model.fc = torch.nn.Identity()       # the backbone ends at the pooled features
 * model.load_state_dict(sd, strict=True)
 * ```
 *
 * With `--head`, the projection head is exported as `fc.0.*`, `fc.2.*`: set
 * `model.fc = nn.Sequential(nn.Linear(D, hidden), nn.ReLU(), nn.Linear(hidden, out))` instead.
 * Exit status: 0 done, 1 error (unreadable checkpoint), 2 bad command line.
 *
 * @module
 */

import { basename } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { disposeBackbone } from "../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../src/ressl/checkpoint.ts";
import { exportMetadata, torchvisionStateDict } from "../src/eval/export.ts";
import { writeSafetensors } from "../src/io/safetensors.ts";
import { createContext } from "../src/tensor/mod.ts";
import { type CommandSpec, parseCommand, required } from "./cli_flags.ts";
import { helpText } from "./help.ts";
import {
  checkNotInput,
  checkOutputPath,
  CHECKPOINT_FLAG,
  resolveCheckpoint,
  runCommand,
} from "./cli_util.ts";

/** The command table of `export`. */
export const EXPORT_SPEC: CommandSpec = {
  name: "export",
  usage: "--checkpoint <file> --out <file.safetensors> [options]",
  description:
    "Writes a checkpoint's backbone as a torchvision ResNet state_dict (safetensors; BN " +
    "num_batches_tracked = steps trained) for model.load_state_dict(sd, strict=True), whatever " +
    "the run trained on (a built-in dataset or your own images). See docs/export.md. Exit " +
    "status: 0 done, 1 error (unreadable checkpoint), 2 bad command line.",
  flags: [
    CHECKPOINT_FLAG,
    {
      name: "out",
      kind: "string",
      value: "<file.safetensors>",
      help: "output .safetensors file (written atomically; never the checkpoint itself)",
    },
    {
      name: "network",
      kind: "choice",
      value: "<n>",
      choices: ["student", "teacher"],
      default: "student",
      help: "which network's backbone: student | teacher",
    },
    {
      name: "head",
      kind: "boolean",
      help: "also export the projection head as fc.0.* / fc.2.* (nn.Sequential)",
    },
  ],
  examples: [
    "deno task export --checkpoint runs/quick --out backbone.safetensors",
    "deno task export --checkpoint runs/photos --out backbone.safetensors --head",
  ],
};

async function main(args: string[]): Promise<number> {
  const p = parseCommand(EXPORT_SPEC, args);
  if (p === null) {
    console.log(helpText(EXPORT_SPEC));
    return 0;
  }
  const given = required(EXPORT_SPEC, p, "checkpoint");
  const out = required(EXPORT_SPEC, p, "out");
  checkOutputPath("out", out);
  checkNotInput("out", out, { checkpoint: given });
  const network = p.values.network as "student" | "teacher";
  const checkpoint = resolveCheckpoint("checkpoint", given);
  // Exporting is a copy of host values: the reference backend needs no native library.
  const backend = createBackend("reference");
  const ctx = createContext(backend);
  try {
    const net = await loadCheckpointBackbone(ctx, checkpoint, {
      network,
      head: p.values.head === true,
    });
    try {
      const { meta, options } = net;
      const tensors = torchvisionStateDict(net, { numBatchesTracked: meta.step, head: net.head });
      await writeSafetensors(out, tensors, {
        metadata: exportMetadata({
          options,
          network,
          step: meta.step,
          epoch: meta.epoch,
          dataset: meta.config.dataset,
          checkpoint: basename(checkpoint),
          head: net.head ? meta.config.head : undefined,
        }),
      });
      console.log(
        `wrote ${out}: ${network} backbone ResNet-${options.depth} (${options.stem} stem` +
          `${
            options.maxPool ? " + max-pool" : ""
          }, width ${options.width}, ${options.inChannels} ` +
          `input channel(s))${net.head ? " + head as fc" : ""}, ${
            Object.keys(tensors).length
          } tensors, step ${meta.step}`,
      );
      return 0;
    } finally {
      disposeBackbone(net);
    }
  } finally {
    backend.dispose();
  }
}

if (import.meta.main) await runCommand(main);
