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
import {
  checkInputFile,
  checkOutputPath,
  choiceFlag,
  parseFlags,
  requiredFlag,
  runCommand,
} from "./cli_util.ts";

const USAGE = `Usage: deno task export --checkpoint <file> --out <file.safetensors> [options]

Writes a checkpoint's backbone as a torchvision ResNet state_dict (safetensors; BN
num_batches_tracked = steps trained) for model.load_state_dict(sd, strict=True). See docs/export.md.

Options:
  --checkpoint <file>   training checkpoint
  --out <file>          output .safetensors file (written atomically)
  --network <n>         student (default) | teacher
  --head                also export the projection head as fc.0.* / fc.2.* (nn.Sequential)
  --help                this text
`;

const FLAGS = {
  checkpoint: { type: "string" },
  out: { type: "string" },
  network: { type: "string" },
  head: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function main(args: string[]): Promise<number> {
  const v = parseFlags(args, FLAGS);
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const checkpoint = requiredFlag("checkpoint", v.checkpoint, "file");
  const out = requiredFlag("out", v.out, "file.safetensors");
  checkOutputPath("out", out);
  const network = choiceFlag("network", v.network, ["student", "teacher"] as const, "student");
  checkInputFile("checkpoint", checkpoint);
  // Exporting is a copy of host values: the reference backend needs no native library.
  const backend = createBackend("reference");
  const ctx = createContext(backend);
  try {
    const net = await loadCheckpointBackbone(ctx, checkpoint, { network, head: v.head === true });
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
