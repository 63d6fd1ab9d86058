/**
 * Networks as pure functions over parameter trees: ResNet backbones, the projection head, and
 * torchvision's initialisation drawn from the Philox RNG.
 *
 * @module
 */
export * from "./param_spec.ts";
export * from "./init.ts";
export * from "./resnet.ts";
export * from "./head.ts";
export * from "./batch_norm_counters.ts";
