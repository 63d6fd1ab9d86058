/**
 * ReSSL on Deno: relational self-supervised learning with tensor ops on native libraries.
 *
 * Importing this module has no side effects and loads no native library: backends are created
 * explicitly (`createBackend("auto" | "cuda" | "cpu" | "reference")`), and each pipeline stage is a
 * function a script can compose into its own loop.
 *
 * The exports, bottom to top: backends and their kernel contract; tensors, autodiff and
 * differentiable ops; networks and optimisers; the ReSSL method (configuration, step, state,
 * checkpoint schema); the training run; data-parallel communication (MPI, NCCL); data (datasets,
 * augmentation, loader, download);
 * evaluation (features, kNN, linear probe, torchvision export); files (safetensors, checkpoints,
 * metrics, npy); plots. Command-line entry points live in `tasks/` and are not part of this API.
 *
 * @example
 * ```ts
 * import { createBackend, createContext, initTrainState, presetConfig } from "./mod.ts";
 * const config = presetConfig("fashion-mnist");
 * config.model.width = 8;
 * const ctx = createContext(createBackend("reference"));
 * const state = initTrainState(ctx, config);
 * console.log(state.queue.data.shape); // [4096, 128]
 * ```
 *
 * @module
 */

// ---- backends: the kernel contract, its table and validator, selection, the reference --------
export * from "./src/backend/mod.ts";

// ---- randomness ----------------------------------------------------------------------------------
export * from "./src/random/mod.ts";

// ---- tensors, autodiff, ops ---------------------------------------------------------------------
export {
  cloneTree,
  Context,
  createContext,
  type Differentiable,
  disposeTree,
  flattenTree,
  type GradNode,
  mapTree,
  record,
  shapeSize,
  stopGradient,
  Tensor,
  type TensorTree,
  treeSize,
  unflattenLike,
  type ValueAndGrad,
  valueAndGrad,
} from "./src/tensor/mod.ts";
export * from "./src/ops/mod.ts";

// ---- networks ------------------------------------------------------------------------------------
export {
  type BnBufferTree,
  type BnTree,
  type ConvTree,
  flattenSpec,
  headForward,
  type HeadOptions,
  headParamCount,
  type HeadParams,
  headSpec,
  initHead,
  type InitHeadOptions,
  type InitKind,
  initResNet,
  type InitResNetOptions,
  initTree,
  type InitTreeOptions,
  type LinearTree,
  materialize,
  type Materialized,
  type ParamSpec,
  paramSpec,
  type ResNetBlock,
  type ResNetBlockBuffers,
  type ResNetBuffers,
  type ResNetDepth,
  resnetExpansion,
  resnetFeatureDim,
  resnetForward,
  type ResNetForwardOptions,
  type ResNetForwardResult,
  type ResNetOptions,
  resnetParamCount,
  type ResNetParams,
  resnetSpec,
  type ResNetStem,
  specSize,
  type SpecTree,
} from "./src/nn/mod.ts";

// ---- optimisers ----------------------------------------------------------------------------------
export {
  excludeBnAndBias,
  isBatchNormOrBiasName,
  type LarsOptions,
  type LarsState,
  larsStep,
  type OptimizerStep,
  type ParamPredicate,
  scaleLr,
  type ScaleLrOptions,
  sgdInit,
  type SgdOptions,
  type SgdState,
  sgdStep,
  warmupCosineLr,
  type WarmupCosineOptions,
  type WarmupOptions,
  warmupSteps,
} from "./src/optim/mod.ts";

// ---- the ReSSL method ----------------------------------------------------------------------------
export {
  backboneOptions,
  CHECKPOINT_TREES,
  type CheckpointBackbone,
  type CheckpointMeta,
  checkpointMeta,
  type CheckpointRunInfo,
  cosineMomentum,
  createTrainStep,
  disposeTrainState,
  effectiveLr,
  emaMomentum,
  type EmaSchedule,
  type EmaTiming,
  emaTiming,
  emaUpdate,
  enqueue,
  featureDim,
  initQueue,
  type InitQueueOptions,
  initTrainState,
  loadBackbone,
  loadCheckpointBackbone,
  type LoadCheckpointBackboneOptions,
  loadTrainState,
  mergeConfig,
  type NetParams,
  type NetState,
  type NetworkName,
  type NetworkPrefixes,
  networkPrefixes,
  openTrainCheckpoint,
  presetConfig,
  type Queue,
  relationLoss,
  relationLossFromLogits,
  type RelationLossOptions,
  saveTrainCheckpoint,
  stateTrees,
  type StepMetrics,
  type StepParallel,
  TRAIN_PRESET_NAMES,
  type TrainBatch,
  type TrainCheckpoint,
  type TrainConfig,
  type TrainState,
  type TrainStep,
  type TrainStepConfig,
  trainStepConfig,
  validateConfig,
} from "./src/ressl/mod.ts";

// ---- the training run ----------------------------------------------------------------------------
export {
  Checkpointer,
  type CheckpointerOptions,
  CollapseWatch,
  type CollapseWatchOptions,
  type KnnData,
  knnMonitor,
  type KnnProgress,
  loadBackboneInit,
  MetricsFlusher,
  type MetricsFlusherOptions,
  type MetricsSink,
  NonFiniteLossError,
  runTraining,
  type TrainRunOptions,
  type TrainRunResult,
  type TrainViews,
  trainViews,
  type WrittenCheckpoint,
} from "./src/run/mod.ts";
export type { TrainParallel } from "./src/run/distributed.ts";

// ---- data parallel ---------------------------------------------------------------------------
export {
  type Comm,
  type CommArray,
  CommError,
  type CommKind,
  type CommRequest,
  createComm,
  type CreateCommOptions,
  type DeviceComm,
  type EnvRecord,
  type Launcher,
  type LaunchInfo,
  type ReduceArray,
  type ReduceOp,
  runWithComm,
  stagedDeviceComm,
} from "./src/dist/mod.ts";
export { createDeviceComm, type DeviceCommKind } from "./src/dist/device_comm_select.ts";
export type { GradientBucketOptions } from "./src/dist/grad_buckets.ts";
export type { MpiFlavor } from "./ffi/mpi/constants.ts";

// ---- data ----------------------------------------------------------------------------------------
export {
  type AugmentationPreset,
  augmentationPreset,
  augmentBatch,
  type AugmentBatchArgs,
  type AugmentOp,
  AugmentWorkspace,
  concatDatasets,
  DataError,
  DATASET_NAMES,
  type DatasetName,
  type DatasetSource,
  type DatasetSplit,
  DEFAULT_DATA_DIR,
  downloadDataset,
  type DownloadOptions,
  type DownloadResult,
  type EpochOptions,
  evalView,
  type HostBatch,
  type ImageDataset,
  type ImageShape,
  type JitterStrength,
  Loader,
  type LoaderOptions,
  memoryDataset,
  type MemoryDatasetOptions,
  openDataset,
  type OpenDatasetOptions,
  PRESET_NAMES,
  type PresetName,
  probeTrainView,
  type RemoteFile,
  stopOnSignals,
  StoppedError,
  type ViewPipeline,
} from "./src/data/mod.ts";
export { firstImages } from "./src/data/datasets/subset.ts";
export type { DownloadPolicy, DownloadProgress } from "./src/data/download_http.ts";

// ---- evaluation ----------------------------------------------------------------------------------
export {
  type Backbone,
  cachedFeatureBatches,
  disposeBackbone,
  evaluateProbe,
  extractFeatures,
  type ExtractFeaturesOptions,
  isTorchvisionExtra,
  knnAccuracy,
  knnClassify,
  type KnnOptions,
  type KnnResult,
  type LabelledFeatures,
  linearProbe,
  linearProbeOnFeatures,
  type LinearProbeOnFeaturesOptions,
  type LinearProbeOptions,
  type LinearProbeResult,
  type ProbeEpochResult,
  type ProbeFeatureBatches,
  type ProbeOptions,
  readTorchvisionBackbone,
  torchvisionStateDict,
  type TorchvisionStateDictOptions,
  trainLinearProbe,
  type TrainLinearProbeArgs,
} from "./src/eval/mod.ts";

// ---- files ---------------------------------------------------------------------------------------
export {
  type Checkpoint,
  type CheckpointFile,
  checkpointName,
  decodeNpy,
  decodeSafetensors,
  type DecodeSafetensorsOptions,
  encodeNpy,
  encodeSafetensors,
  type EncodeSafetensorsOptions,
  listCheckpoints,
  loadCheckpoint,
  loadTreeLike,
  type LoadTreeOptions,
  MetricsLog,
  type MetricsRecord,
  NonFiniteTensorError,
  type NpyArray,
  type NpyData,
  Progress,
  type ProgressOptions,
  type ProgressState,
  pruneCheckpoints,
  type PruneCheckpointsOptions,
  readCheckpoint,
  readCheckpointMeta,
  readMetrics,
  readSafetensors,
  type ReadSafetensorsOptions,
  readTreeLike,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsMap,
  saveCheckpoint,
  TensorEntryError,
  tensorFromEntry,
  type TensorLayout,
  treeToSafetensors,
  type TreeToSafetensorsOptions,
  writeFileAtomic,
  type WriteFileAtomicOptions,
  writeNpy,
  writeSafetensors,
  writeTree,
} from "./src/io/mod.ts";

// ---- plots ---------------------------------------------------------------------------------------
export {
  checkpointEmbeddingMap,
  type CheckpointMapOptions,
  type CheckpointMapResult,
  type CurvePoint,
  embeddingMap,
  type EmbeddingMapOptions,
  type EmbeddingMapResult,
  plotRun,
  type PlotRunOptions,
  type RunCurves,
  runCurves,
  type SvgToPngOptions,
  tsne,
  type TsneOptions,
  type TsneResult,
} from "./src/plot/mod.ts";
