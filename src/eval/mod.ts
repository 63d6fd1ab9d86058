/**
 * Evaluation: backbone features of a dataset, the weighted kNN classifier, the linear probe,
 * backbones from torchvision files, the torchvision export, and honest accuracy counting.
 *
 * @module
 */
export * from "./features.ts";
export * from "./knn.ts";
export * from "./linear_probe.ts";
export * from "./linear_probe_images.ts";
export * from "./backbone_io.ts";
export * from "./export.ts";
export * from "./scores.ts";
