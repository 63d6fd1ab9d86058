/**
 * Tensors, contexts (memory scopes), parameter trees and autodiff.
 *
 * @module
 */
export * from "./tensor.ts";
export * from "./tree.ts";
export * from "./autodiff.ts";
