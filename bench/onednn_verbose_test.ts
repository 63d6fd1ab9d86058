import assert from "node:assert/strict";
import {
  convMacs,
  convShape,
  groupVerbose,
  isFallback,
  parseVerboseLine,
} from "./onednn_verbose.ts";

// Lines as oneDNN 2.6.3 (the cpu backend) and 3.x (PyTorch 2.x) print them.
const V2_CONV =
  "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,src_f32::blocked:abcd:f0 " +
  "wei_f32::blocked:Acdb16a:f0 bia_undef::undef::f0 dst_f32::blocked:aBcd16b:f0,,alg:convolution_direct," +
  "mb64_ic1oc64_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1,7.84985";
const V2_REORDER = "onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd:f0 " +
  "dst_f32::blocked:ABcd16b16a:f0,,,64x64x3x3,6.6001";
const V3_CONV =
  "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training," +
  "src:f32::blocked:acdb::f0 wei:f32::blocked:Acdb64a::f0 bia:undef::undef::: dst:f32::blocked:acdb::f0," +
  "attr-scratchpad:user,alg:convolution_direct,mb64_ic64oc64_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1,0.5";

Deno.test("parseVerboseLine() reads oneDNN 2.x and 3.x exec lines and skips the rest", () => {
  const a = parseVerboseLine(V2_CONV)!;
  assert.equal(a.kind, "convolution");
  assert.equal(a.impl, "jit:avx512_core");
  assert.equal(a.prop, "forward_training");
  assert.equal(a.problem, "mb64_ic1oc64_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1");
  assert.equal(a.ms, 7.84985);
  const b = parseVerboseLine(V3_CONV)!;
  assert.equal(b.impl, "brg_conv_fwd:avx512_core");
  assert.equal(b.problem, "mb64_ic64oc64_ih28oh28kh3sh1dh0ph1_iw28ow28kw3sw1dw0pw1");
  assert.equal(b.ms, 0.5);
  assert.equal(parseVerboseLine("onednn_verbose,info,oneDNN v2.6.3 (commit N/A)"), undefined);
  assert.equal(parseVerboseLine("@@begin 12"), undefined);
});

Deno.test("groupVerbose() sums calls and time per problem and names reorder layouts", () => {
  const e = [V2_CONV, V2_CONV, V2_REORDER].map((l) => parseVerboseLine(l)!);
  const g = groupVerbose(e);
  assert.equal(g.length, 2);
  assert.equal(g[0].kind, "convolution");
  assert.equal(g[0].calls, 2);
  assert.ok(Math.abs(g[0].ms - 2 * 7.84985) < 1e-9);
  assert.equal(g[1].layout, "abcd -> ABcd16b16a");
});

Deno.test("convMacs() and convShape() read the problem descriptor", () => {
  const p = "mb64_ic64oc128_ih28oh14kh3sh2dh0ph1_iw28ow14kw3sw2dw0pw1";
  assert.equal(convMacs(p), 64 * 64 * 128 * 14 * 14 * 9);
  assert.equal(convShape(p), "mb64 64x28x28 -> 128x14x14 k3 s2");
  assert.equal(convMacs("64x64x3x3"), undefined);
});

Deno.test("isFallback() flags reference, gemm and simple implementations only", () => {
  assert.ok(isFallback("ref:any"));
  assert.ok(isFallback("gemm:jit"));
  assert.ok(isFallback("simple:any"));
  assert.ok(!isFallback("jit:avx512_core"));
  assert.ok(!isFallback("brg_conv_fwd:avx512_core"));
  assert.ok(!isFallback("jit_1x1:avx512_core"));
});
