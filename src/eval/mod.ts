/**
 * Evaluation: backbone features of a dataset and the weighted kNN classifier.
 *
 * @module
 */
export * from "./features.ts";
export * from "./knn.ts";
