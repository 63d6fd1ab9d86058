/**
 * The embedding map of a training checkpoint: the backbone (student by default) of the checkpoint
 * encodes the first N test images of its dataset through the evaluation view (eval-mode BN,
 * L2-normalised pooled features, as the kNN monitor), and {@link embeddingMap} draws their t-SNE
 * coloured by class.
 *
 * @module
 */

import type { ViewPipeline } from "../data/augment.ts";
import { openDataset } from "../data/datasets/mod.ts";
import type { ImageDataset } from "../data/datasets/dataset.ts";
import { firstImages } from "../data/datasets/subset.ts";
import { augmentationPreset, evalView } from "../data/pipelines.ts";
import { disposeBackbone } from "../eval/backbone_io.ts";
import { loadCheckpointBackbone, type NetworkName } from "../ressl/checkpoint.ts";
import { extractFeatures } from "../eval/features.ts";
import { datasetLabels } from "../eval/linear_probe_images.ts";
import type { Context } from "../tensor/mod.ts";
import {
  embeddingMap,
  type EmbeddingMapOptions,
  type EmbeddingMapResult,
} from "./embedding_map.ts";
import { checkChartPaths } from "./render.ts";

/** Options of {@link checkpointEmbeddingMap}. */
export interface CheckpointMapOptions
  extends
    Omit<EmbeddingMapOptions, "features" | "dim" | "labels" | "classes" | "title" | "subtitle"> {
  /** A training checkpoint (`checkpoint-*.safetensors`). */
  checkpoint: string;
  /** Dataset folder (default `data`; Fashion-MNIST is also found in Debian's copy). */
  dataDir?: string;
  /**
   * Opens the test split of the dataset named (at `imageSize` for image folders) instead of the
   * search in `dataDir`: a command line passes the copy its `--data` names. The map closes it.
   */
  openTestSet?: (name: string, imageSize: number) => Promise<ImageDataset>;
  /** Dataset preset to draw (default: the checkpoint's own dataset and normalisation). */
  preset?: string;
  /** Number of test images, the first ones of the test split (default 2000). */
  points?: number;
  /** Which network's backbone (default student). */
  network?: NetworkName;
  /** Chart title (default names the dataset; the subtitle names the network and step). */
  title?: string;
  /** Called with a line of progress (features done, t-SNE started). */
  onStatus?: (line: string) => void;
}

/** What {@link checkpointEmbeddingMap} returns. */
export interface CheckpointMapResult extends EmbeddingMapResult {
  /** The checkpoint's step. */
  step: number;
  /** Name of the images drawn (e.g. `fashion-mnist/test[:2000]`). */
  dataset: string;
  /** Number of points drawn. */
  points: number;
  /** Feature dimension of the backbone. */
  dim: number;
}

/** Dataset preset names by training-config dataset name. */
const PRESET_OF: Record<string, string> = {
  tinyimagenet: "tiny-imagenet",
  "imagenet-multicrop": "imagenet",
};

/**
 * Draws the t-SNE map of a checkpoint's backbone features of the first `points` test images of its
 * dataset, coloured by class, into `out` (`.svg` / `.png`). Errors name the checkpoint or dataset.
 */
export async function checkpointEmbeddingMap(
  ctx: Context,
  opts: CheckpointMapOptions,
): Promise<CheckpointMapResult> {
  const out = typeof opts.out === "string" ? [opts.out] : opts.out;
  checkChartPaths(out);
  const points = opts.points ?? 2000;
  if (!(Number.isInteger(points) && points >= 2)) {
    throw new RangeError(`Cannot draw an embedding map of ${points} points: need an integer >= 2`);
  }
  const network = opts.network ?? "student";
  const net = await loadCheckpointBackbone(ctx, opts.checkpoint, { network });
  let ds: ImageDataset | undefined;
  try {
    const { config } = net.meta;
    const name = opts.preset ?? config.dataset;
    const preset = augmentationPreset(PRESET_OF[name] ?? name);
    const view: ViewPipeline = opts.preset !== undefined ? evalView(preset) : {
      size: config.image.size,
      ops: [],
      mean: [...config.image.mean],
      std: [...config.image.std],
    };
    ds = opts.openTestSet
      ? await opts.openTestSet(preset.name, view.size)
      : await openDataset(preset.name, {
        dataDir: opts.dataDir,
        split: "test",
        imageSize: view.size,
      });
    if (ds.channels !== net.options.inChannels) {
      throw new Error(
        `Cannot draw the embedding map of '${opts.checkpoint}' on '${ds.name}': its images have ${ds.channels} channel(s), the backbone takes ${net.options.inChannels}`,
      );
    }
    const images = firstImages(ds, points);
    const labels = datasetLabels(images);
    const f = extractFeatures(ctx, {
      params: net.params,
      buffers: net.buffers,
      dataset: images,
      view,
      maxPool: net.options.maxPool,
    });
    const [n, dim] = f.shape;
    const features = f.toArray();
    f.dispose();
    opts.onStatus?.(`features of ${n} images (${images.name}), dimension ${dim}; running t-SNE`);
    const result = await embeddingMap({
      ...opts,
      features,
      dim,
      labels,
      classes: images.classes,
      title: opts.title ?? `t-SNE of ${n} ${preset.name} test images`,
      subtitle: `${network} backbone features (dimension ${dim}), checkpoint step ${net.meta.step}`,
    });
    return { ...result, step: net.meta.step, dataset: images.name, points: n, dim };
  } finally {
    ds?.close();
    disposeBackbone(net);
  }
}
