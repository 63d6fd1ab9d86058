/**
 * The oneDNN 2.x C functions this project binds, as a Deno FFI symbol table.
 *
 * Conventions: descriptor structs, `dnnl_dims_t` arrays and out-parameters are `buffer`s (typed
 * arrays the caller owns); library handles and data pointers are `pointer`s; `dnnl_dim_t` is i64
 * (bigint); every function returning `dnnl_status_t` returns an i32 to pass to `checkStatus`.
 *
 * @module
 */

/** Symbols of `libdnnl.so.2` used by the cpu backend. */
export const DNNL_SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_get_effective_cpu_isa: { parameters: [], result: "i32" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_engine_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_destroy: { parameters: ["pointer"], result: "i32" },

  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_desc_reshape: { parameters: ["buffer", "buffer", "i32", "buffer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["buffer"], result: "usize" },
  dnnl_memory_desc_equal: { parameters: ["buffer", "buffer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "buffer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_get_data_handle: { parameters: ["pointer", "buffer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },

  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"], // post_ops, scale, alg, alpha, beta
    result: "i32",
  },
  dnnl_post_ops_append_sum: { parameters: ["pointer", "f32"], result: "i32" },
  dnnl_primitive_attr_set_scales: {
    parameters: ["pointer", "i32", "i64", "i32", "buffer"], // attr, arg, count, mask, scales
    result: "i32",
  },
  dnnl_primitive_attr_set_output_scales: {
    parameters: ["pointer", "i64", "i32", "buffer"], // attr, count, mask, scales
    result: "i32",
  },

  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_desc_query: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },

  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // weights_desc
      "buffer", // bias_desc (null)
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // diff_weights_desc
      "buffer", // diff_bias_desc (null)
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_pooling_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_softmax_forward_desc_init: { parameters: ["buffer", "i32", "buffer", "i32"], result: "i32" },
  dnnl_softmax_backward_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  dnnl_logsoftmax_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  dnnl_logsoftmax_backward_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  dnnl_binary_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], // desc, src, weights, bias, dst
    result: "i32",
  },
  dnnl_sum_primitive_desc_create: {
    parameters: ["buffer", "buffer", "i32", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_sgemm: {
    parameters: [
      "u8", // transa ('N' or 'T')
      "u8", // transb
      "i64", // M
      "i64", // N
      "i64", // K
      "f32", // alpha
      "pointer", // A
      "i64", // lda
      "pointer", // B
      "i64", // ldb
      "f32", // beta
      "pointer", // C
      "i64", // ldc
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Symbols of the OpenMP runtime (`libgomp.so.1`) oneDNN runs its threads on. */
export const GOMP_SYMBOLS = {
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
  omp_get_max_threads: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound oneDNN functions. */
export type DnnlSymbols = Deno.DynamicLibrary<typeof DNNL_SYMBOLS>["symbols"];
