/**
 * ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, torchvision's v1.5: stride on the 3x3 conv)
 * backbones as pure functions over parameter trees, without the final fc layer: the output is the
 * globally average-pooled feature vector [N, 8 * width * expansion].
 *
 * Flattened parameter paths equal torchvision's state_dict keys (minus `fc.*`): `conv1.weight`,
 * `bn1.weight`, `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, ... The BN running
 * statistics live in a separate buffer tree (`bn1.running_mean`, `bn1.running_var`, ...).
 * torchvision's `num_batches_tracked` counters are not kept (they only matter for momentum=None,
 * and backends have no int64): an exporter adds them, see `batchNormCounterNames`.
 *
 * @module
 */

import { batchNormAct, type BatchNormSync, conv2d, globalAvgPool, maxPool2d } from "../ops/mod.ts";
import type { RngKey } from "../random/philox.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";
import { initTree } from "./init.ts";
import { type ParamSpec, paramSpec, specSize } from "./param_spec.ts";

/** Supported depths. */
export type ResNetDepth = 18 | 34 | 50;

/** `cifar`: 3x3/1 stem conv (small images); `imagenet`: 7x7/2 stem conv + 3x3/2 max-pool. */
export type ResNetStem = "cifar" | "imagenet";

/** Architecture of a backbone. */
export interface ResNetOptions {
  /** 18, 34 (BasicBlock) or 50 (Bottleneck). */
  depth: ResNetDepth;
  /** Stem type. */
  stem: ResNetStem;
  /** Max-pool 3/2/1 after the stem (default: true for `imagenet`, false for `cifar`). */
  maxPool?: boolean;
  /** Input image channels (3 for RGB, 1 for Fashion-MNIST). */
  inChannels: number;
  /** Width of the first stage; stages are w, 2w, 4w, 8w (default 64). */
  width?: number;
}

/** A convolution's parameters. */
export type ConvTree<L = Tensor> = { weight: L };
/** A batch norm's affine parameters. */
export type BnTree<L = Tensor> = { weight: L; bias: L };
/** A batch norm's running statistics (torchvision names). */
export type BnBufferTree<L = Tensor> = { running_mean: L; running_var: L };

/** Parameters of one residual block (`conv3`/`bn3` for Bottleneck blocks). */
export type ResNetBlock<L = Tensor> = {
  conv1: ConvTree<L>;
  bn1: BnTree<L>;
  conv2: ConvTree<L>;
  bn2: BnTree<L>;
  conv3?: ConvTree<L>;
  bn3?: BnTree<L>;
  /** 1x1 conv + BN shortcut where the shape changes. */
  downsample?: [ConvTree<L>, BnTree<L>];
};

/** Buffers of one residual block. */
export type ResNetBlockBuffers<L = Tensor> = {
  bn1: BnBufferTree<L>;
  bn2: BnBufferTree<L>;
  bn3?: BnBufferTree<L>;
  downsample?: { "1": BnBufferTree<L> };
};

/** Parameters of a backbone (flattened paths = torchvision's names). */
export type ResNetParams<L = Tensor> = {
  conv1: ConvTree<L>;
  bn1: BnTree<L>;
  layer1: ResNetBlock<L>[];
  layer2: ResNetBlock<L>[];
  layer3: ResNetBlock<L>[];
  layer4: ResNetBlock<L>[];
};

/** BN running statistics of a backbone. */
export type ResNetBuffers<L = Tensor> = {
  bn1: BnBufferTree<L>;
  layer1: ResNetBlockBuffers<L>[];
  layer2: ResNetBlockBuffers<L>[];
  layer3: ResNetBlockBuffers<L>[];
  layer4: ResNetBlockBuffers<L>[];
};

const BLOCKS: Record<ResNetDepth, [number, number, number, number]> = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 6, 3],
};

/** Channels multiplier of the last conv of a block: 1 (BasicBlock) or 4 (Bottleneck). */
export function resnetExpansion(depth: ResNetDepth): number {
  return depth === 50 ? 4 : 1;
}

/** Length of the feature vector a backbone returns: 8 * width * expansion. */
export function resnetFeatureDim(options: ResNetOptions): number {
  return 8 * (options.width ?? 64) * resnetExpansion(options.depth);
}

function checkOptions(o: ResNetOptions): void {
  const what = "Cannot build ResNet";
  if (!(o.depth in BLOCKS)) throw new RangeError(`${what}: depth ${o.depth} is not 18, 34 or 50`);
  if (o.stem !== "cifar" && o.stem !== "imagenet") {
    throw new RangeError(`${what}: stem '${o.stem}' is not 'cifar' or 'imagenet'`);
  }
  for (const [name, v] of [["inChannels", o.inChannels], ["width", o.width ?? 64]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${what}: ${name} is ${v}, expected an integer >= 1`);
    }
  }
}

const conv = (k: number, c: number, r: number): ConvTree<ParamSpec> => ({
  weight: paramSpec([k, c, r, r], "conv"),
});
const bn = (c: number): BnTree<ParamSpec> => ({
  weight: paramSpec([c], "ones"),
  bias: paramSpec([c], "zeros"),
});
const bnBuffers = (c: number): BnBufferTree<ParamSpec> => ({
  running_mean: paramSpec([c], "zeros"),
  running_var: paramSpec([c], "ones"),
});

/**
 * The parameter and buffer trees of a backbone as specs (shapes and init rules, no memory):
 * count parameters with `specSize(spec.params)`, list names with `flattenSpec`.
 */
export function resnetSpec(
  options: ResNetOptions,
): { params: ResNetParams<ParamSpec>; buffers: ResNetBuffers<ParamSpec> } {
  checkOptions(options);
  const width = options.width ?? 64;
  const expansion = resnetExpansion(options.depth);
  const stemKernel = options.stem === "imagenet" ? 7 : 3;
  const layers: ResNetBlock<ParamSpec>[][] = [];
  const layerBuffers: ResNetBlockBuffers<ParamSpec>[][] = [];
  let inPlanes = width;
  BLOCKS[options.depth].forEach((count, stage) => {
    const planes = width << stage;
    const out = planes * expansion;
    const blocks: ResNetBlock<ParamSpec>[] = [];
    const buffers: ResNetBlockBuffers<ParamSpec>[] = [];
    for (let b = 0; b < count; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const block: ResNetBlock<ParamSpec> = expansion === 1
        ? {
          conv1: conv(planes, inPlanes, 3),
          bn1: bn(planes),
          conv2: conv(planes, planes, 3),
          bn2: bn(planes),
        }
        : {
          conv1: conv(planes, inPlanes, 1),
          bn1: bn(planes),
          conv2: conv(planes, planes, 3),
          bn2: bn(planes),
          conv3: conv(out, planes, 1),
          bn3: bn(out),
        };
      const buf: ResNetBlockBuffers<ParamSpec> = { bn1: bnBuffers(planes), bn2: bnBuffers(planes) };
      if (expansion !== 1) buf.bn3 = bnBuffers(out);
      if (stride !== 1 || inPlanes !== out) {
        block.downsample = [conv(out, inPlanes, 1), bn(out)];
        buf.downsample = { "1": bnBuffers(out) };
      }
      blocks.push(block);
      buffers.push(buf);
      inPlanes = out;
    }
    layers.push(blocks);
    layerBuffers.push(buffers);
  });
  return {
    params: {
      conv1: conv(width, options.inChannels, stemKernel),
      bn1: bn(width),
      layer1: layers[0],
      layer2: layers[1],
      layer3: layers[2],
      layer4: layers[3],
    },
    buffers: {
      bn1: bnBuffers(width),
      layer1: layerBuffers[0],
      layer2: layerBuffers[1],
      layer3: layerBuffers[2],
      layer4: layerBuffers[3],
    },
  };
}

/** Number of learnable parameters of a backbone (no allocation). */
export function resnetParamCount(options: ResNetOptions): number {
  return specSize(resnetSpec(options).params);
}

/** Options of {@link initResNet}. */
export interface InitResNetOptions extends ResNetOptions {
  /** Root key; tensor `p` is drawn from `foldIn(key, nameId(prefix + p))`. */
  key: RngKey;
  /** Prepended to paths before hashing; default "". */
  prefix?: string;
}

/** A backbone's parameter and buffer trees on a context, initialised as torchvision does. */
export function initResNet(
  ctx: Context,
  options: InitResNetOptions,
): { params: ResNetParams; buffers: ResNetBuffers } {
  const spec = resnetSpec(options);
  return ctx.scope(() => {
    const params: ResNetParams = initTree(ctx, spec.params, options);
    const buffers: ResNetBuffers = initTree(ctx, spec.buffers, options);
    return { params, buffers };
  });
}

/** Options of {@link resnetForward}. */
export interface ResNetForwardOptions {
  /** Batch statistics + running-stat update (true) or running statistics (false). */
  training: boolean;
  /** SplitBatchNorm splits in training (default 1 = plain BatchNorm). */
  bnSplits?: number;
  /** Data-parallel training: BN groups counted over the global batch of all ranks (ops/batch_norm_sync). */
  bnSync?: BatchNormSync;
  /**
   * Max-pool after the stem. Default: true for a 7x7 stem (imagenet), false for a 3x3 stem (cifar);
   * pass the `maxPool` the backbone was built with (STL-10 / Tiny-ImageNet use the cifar stem + pool).
   */
  maxPool?: boolean;
}

/** What {@link resnetForward} returns. */
export interface ResNetForwardResult {
  /** Globally pooled features [N, 8 * width * expansion]. */
  features: Tensor;
  /** New BN running statistics (training) or views of the given ones (eval); the caller owns them. */
  buffers: ResNetBuffers;
}

/**
 * Runs a backbone on images `x` [N, C, H, W]. Pure: the given buffers are not changed; the updated
 * running statistics come back as a new tree. Differentiable in `params` and `x`.
 */
export function resnetForward(
  params: ResNetParams,
  buffers: ResNetBuffers,
  x: Tensor,
  opts: ResNetForwardOptions,
): ResNetForwardResult {
  const bnOpts = { training: opts.training, splits: opts.bnSplits ?? 1, sync: opts.bnSync };
  // Each batch norm runs fused with what follows it: its ReLU, and a block's residual add.
  const norm: Norm = (t, p, b, fuse) => {
    const state = { runningMean: b.running_mean, runningVar: b.running_var };
    const r = batchNormAct(t, p, state, { ...bnOpts, ...fuse });
    return [r.y, { running_mean: r.runningMean, running_var: r.runningVar }];
  };
  const stemKernel = params.conv1.weight.shape[2];
  const imagenet = stemKernel === 7;
  let h = conv2d(x, params.conv1.weight, {
    stride: imagenet ? 2 : 1,
    padding: (stemKernel - 1) / 2,
  });
  const [stemOut, stemBuf] = norm(h, params.bn1, buffers.bn1, RELU);
  h = stemOut;
  if (opts.maxPool ?? imagenet) h = maxPool2d(h, { kernel: 3, stride: 2, padding: 1 });
  const newLayers: ResNetBlockBuffers[][] = [];
  for (const [stage, name] of (["layer1", "layer2", "layer3", "layer4"] as const).entries()) {
    const blocks = params[name];
    const blockBufs = buffers[name];
    if (blocks.length !== blockBufs.length) {
      throw new RangeError(
        `Cannot run ResNet: ${name} has ${blocks.length} parameter blocks but ${blockBufs.length} buffer blocks`,
      );
    }
    const out: ResNetBlockBuffers[] = [];
    blocks.forEach((block, i) => {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      const r = blockForward(block, blockBufs[i], h, stride, norm);
      h = r.y;
      out.push(r.buffers);
    });
    newLayers.push(out);
  }
  return {
    features: globalAvgPool(h),
    buffers: {
      bn1: stemBuf,
      layer1: newLayers[0],
      layer2: newLayers[1],
      layer3: newLayers[2],
      layer4: newLayers[3],
    },
  };
}

/** A batch norm with what is fused after it: a ReLU, and the residual added before it. */
type Norm = (
  t: Tensor,
  p: BnTree,
  b: BnBufferTree,
  fuse?: { relu?: boolean; residual?: Tensor },
) => [Tensor, BnBufferTree];

const RELU = { relu: true };

/**
 * One BasicBlock (no conv3) or Bottleneck (conv3) block: `relu(bn_last(...) + identity)` with the
 * add and the ReLU fused into the last batch norm, every inner ReLU fused into its batch norm.
 */
function blockForward(
  p: ResNetBlock,
  b: ResNetBlockBuffers,
  x: Tensor,
  stride: number,
  norm: Norm,
): { y: Tensor; buffers: ResNetBlockBuffers } {
  const nb: ResNetBlockBuffers = {} as ResNetBlockBuffers;
  let identity = x;
  let downsample: BnBufferTree | undefined;
  if (p.downsample) {
    if (!b.downsample) {
      throw new Error("Cannot run ResNet: a block has a downsample conv but no downsample buffers");
    }
    const [dc, dbn] = p.downsample;
    [identity, downsample] = norm(conv2d(x, dc.weight, { stride }), dbn, b.downsample["1"]);
  }
  const k2 = p.conv2.weight.shape[2];
  const last = { relu: true, residual: identity };
  let y: Tensor;
  if (p.conv3) {
    if (!p.bn3 || !b.bn3) {
      throw new Error(
        "Cannot run ResNet: a Bottleneck block has conv3 but no bn3 parameters/buffers",
      );
    }
    let t: Tensor;
    [t, nb.bn1] = norm(conv2d(x, p.conv1.weight), p.bn1, b.bn1, RELU);
    [t, nb.bn2] = norm(
      conv2d(t, p.conv2.weight, { stride, padding: (k2 - 1) / 2 }),
      p.bn2,
      b.bn2,
      RELU,
    );
    [y, nb.bn3] = norm(conv2d(t, p.conv3.weight), p.bn3, b.bn3, last);
  } else {
    const k1 = p.conv1.weight.shape[2];
    let t: Tensor;
    [t, nb.bn1] = norm(
      conv2d(x, p.conv1.weight, { stride, padding: (k1 - 1) / 2 }),
      p.bn1,
      b.bn1,
      RELU,
    );
    [y, nb.bn2] = norm(conv2d(t, p.conv2.weight, { padding: (k2 - 1) / 2 }), p.bn2, b.bn2, last);
  }
  if (downsample) nb.downsample = { "1": downsample }; // last, as in the buffer spec
  return { y, buffers: nb };
}
