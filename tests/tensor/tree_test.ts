/**
 * cloneTree: a deep copy with new storages and the same values, shapes and dtypes, for a tree or
 * a bare tensor; the copy outlives the original and carries no autodiff node.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { cloneTree, createContext, disposeTree, flattenTree, mul } from "../../mod.ts";

Deno.test("cloneTree copies every tensor into new storage, for trees and single tensors", () => {
  const backend = createReferenceBackend();
  const ctx = createContext(backend);
  const tree = {
    a: ctx.fromArray([1, 2, 3, 4, 5, 6], [2, 3]),
    list: [ctx.fromArray(Uint8Array.of(7, 8), [2]), ctx.fromArray(Int32Array.of(-1), [1])],
  };
  const allocs = backend.liveAllocations();
  const copy = cloneTree(tree);
  assert.equal(backend.liveAllocations(), allocs + 3, "one new storage per tensor");
  const before = flattenTree(tree), after = flattenTree(copy);
  assert.deepEqual(after.map(([p]) => p), ["a", "list.0", "list.1"]);
  for (const [i, [path, t]] of after.entries()) {
    const orig = before[i][1];
    assert.notEqual(t.storage, orig.storage, path);
    assert.equal(t.dtype, orig.dtype, path);
    assert.deepEqual(t.shape, orig.shape, path);
    assert.deepEqual(t.toArray(), orig.toArray(), path);
  }
  disposeTree(tree);
  assert.deepEqual([...copy.list[0].toArray()], [7, 8], "the copy outlives the original");

  const x = ctx.fromArray([2, 3], [2]);
  x.requiresGrad = true;
  const y = mul(x, x);
  const single = cloneTree(y);
  assert.deepEqual([...single.toFloat32()], [4, 9]);
  assert.equal(single.node, undefined, "a copy has no autodiff node");
  disposeTree([copy, x, y, single]);
  assert.equal(ctx.liveTensors, 0);
  assert.equal(backend.liveAllocations(), 0);
});
