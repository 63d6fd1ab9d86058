/**
 * Kernel-argument packing for `cuLaunchKernel`: offsets follow natural alignment (checked against
 * the C compiler's struct layout for random signatures), values land at their offsets, the `extra`
 * and `kernelParams` arrays point at the right bytes, and bad arguments are refused by position.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { argLayout, type KernelArgType, launchBuffer, packArgs } from "../../ffi/cuda/launch.ts";
import { cCompiler } from "./cuda_header_parse.ts";

Deno.test("launch: layouts of mixed signatures", () => {
  assert.deepEqual(argLayout(["ptr", "i32", "f32", "ptr"]), { offsets: [0, 8, 12, 16], size: 24 });
  assert.deepEqual(argLayout(["i32", "ptr"]), { offsets: [0, 8], size: 16 });
  assert.deepEqual(argLayout(["f32", "f32", "i64", "u32"]), { offsets: [0, 4, 8, 16], size: 20 });
  assert.deepEqual(argLayout(["f32", "f64"]), { offsets: [0, 8], size: 16 });
  assert.deepEqual(argLayout([]), { offsets: [], size: 0 });
});

const C_TYPE: Record<KernelArgType, string> = {
  ptr: "void*",
  u64: "unsigned long long",
  i64: "long long",
  i32: "int",
  u32: "unsigned int",
  f32: "float",
  f64: "double",
};

Deno.test({
  name: "launch: offsets equal the C compiler's for 40 random signatures" +
    (cCompiler() === null ? " (skipped: no C compiler)" : ""),
  ignore: cCompiler() === null,
  fn() {
    const types = Object.keys(C_TYPE) as KernelArgType[];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sigs = Array.from(
      { length: 40 },
      () => Array.from({ length: 1 + rand(9) }, () => types[rand(types.length)]),
    );
    const body = sigs.map((sig, s) => {
      const fields = sig.map((t, i) => `${C_TYPE[t]} a${i};`).join(" ");
      const offs = sig.map((_, i) => `(int)offsetof(struct S${s}, a${i})`).join(", ");
      const last = `(int)(offsetof(struct S${s}, a${sig.length - 1}) + sizeof(${
        C_TYPE[sig[sig.length - 1]]
      }))`;
      return {
        decl: `struct S${s} { ${fields} };`,
        print: `printf("${sig.map(() => "%d").join(" ")} %d\\n", ${offs}, ${last});`,
      };
    });
    const dir = Deno.makeTempDirSync({ prefix: "ressl_launch_" });
    try {
      const src = join(dir, "layout.c");
      Deno.writeTextFileSync(
        src,
        `#include <stdio.h>\n#include <stddef.h>\n${body.map((b) => b.decl).join("\n")}\n` +
          `int main(void) {\n${body.map((b) => b.print).join("\n")}\nreturn 0; }\n`,
      );
      const exe = join(dir, "layout");
      const cc = new Deno.Command(cCompiler()!, { args: [src, "-o", exe], stderr: "piped" })
        .outputSync();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const lines = new TextDecoder().decode(new Deno.Command(exe).outputSync().stdout).trim()
        .split("\n");
      sigs.forEach((sig, s) => {
        const { offsets, size } = argLayout(sig);
        assert.equal(lines[s], [...offsets, size].join(" "), sig.join(","));
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("launch: packed values land at their offsets, little-endian", () => {
  const sig: KernelArgType[] = ["ptr", "i32", "f32", "u64", "u32", "f64", "i64"];
  const layout = argLayout(sig);
  const view = new DataView(new ArrayBuffer(layout.size));
  const ptr = 0x7f00_1234_5678n;
  packArgs(view, sig, layout, [ptr, -7, 1.5, 2n ** 63n + 5n, 4_000_000_000, Math.PI, -3n]);
  const o = layout.offsets;
  assert.equal(view.getBigUint64(o[0], true), ptr);
  assert.equal(view.getInt32(o[1], true), -7);
  assert.equal(view.getFloat32(o[2], true), 1.5);
  assert.equal(view.getBigUint64(o[3], true), 2n ** 63n + 5n);
  assert.equal(view.getUint32(o[4], true), 4_000_000_000);
  assert.equal(view.getFloat64(o[5], true), Math.PI);
  assert.equal(view.getBigInt64(o[6], true), -3n);
  // A safe-integer number is accepted for a pointer.
  packArgs(view, sig, layout, [4096, 0, 0, 0n, 0, 0, 0n]);
  assert.equal(view.getBigUint64(0, true), 4096n);
});

Deno.test("launch: bad arguments are refused naming the kernel, position and type", () => {
  const sig: KernelArgType[] = ["ptr", "i32", "u32"];
  const layout = argLayout(sig);
  const view = new DataView(new ArrayBuffer(layout.size));
  const bad = (args: (number | bigint)[], msg: RegExp) =>
    assert.throws(() => packArgs(view, sig, layout, args, "axpby"), msg);
  bad([1n, 2], /axpby: it takes 3 arguments \(ptr, i32, u32\), got 2/);
  bad([-1n, 0, 0], /argument 0 \(ptr\) cannot be -1/);
  bad([2n ** 64n, 0, 0], /argument 0 \(ptr\)/);
  bad([0n, 1.5, 0], /argument 1 \(i32\) cannot be 1.5/);
  bad([0n, 2 ** 31, 0], /argument 1 \(i32\)/);
  bad([0n, 0, -1], /argument 2 \(u32\) cannot be -1/);
  bad([0.5, 0, 0], /argument 0 \(ptr\) cannot be 0.5/);
});

Deno.test("launch: extra and kernelParams arrays point into the packed buffer", () => {
  const sig: KernelArgType[] = ["ptr", "i32", "f32", "ptr"];
  const layout = argLayout(sig);
  const lb = launchBuffer(layout);
  packArgs(lb.view, sig, layout, [0xabcdn, 42, -2.25, 0x1234n]);
  const extra = new Deno.UnsafePointerView(lb.extra);
  const base = extra.getBigUint64(8);
  assert.deepEqual(
    [extra.getBigUint64(0), extra.getBigUint64(16), extra.getBigUint64(32)],
    [1n, 2n, 0n],
    "BUFFER_POINTER, BUFFER_SIZE, END",
  );
  const at = (addr: bigint) => new Deno.UnsafePointerView(Deno.UnsafePointer.create(addr)!);
  assert.equal(at(extra.getBigUint64(24)).getBigUint64(0), BigInt(layout.size), "&size");
  assert.equal(at(base).getBigUint64(0), 0xabcdn);
  const params = new Deno.UnsafePointerView(lb.kernelParams);
  const slot = (i: number) => at(params.getBigUint64(8 * i));
  assert.equal(params.getBigUint64(0), base, "kernelParams[0] is the buffer start");
  assert.equal(slot(1).getInt32(0), 42);
  assert.equal(slot(2).getFloat32(0), -2.25);
  assert.equal(slot(3).getBigUint64(0), 0x1234n);
  assert.equal(base % 8n, 0n, "8-byte aligned");
});
