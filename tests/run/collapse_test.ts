import assert from "node:assert/strict";
import { CollapseWatch } from "../../src/run/collapse.ts";

Deno.test("CollapseWatch warns once when the loss stays at ln K, not for a loss near it", () => {
  const w = new CollapseWatch({ queueSize: 4096, patience: 3 });
  const lnK = Math.log(4096);
  assert.equal(w.observe(1, 7.9), undefined);
  assert.equal(w.observe(2, lnK - 0.01), undefined, "0.01 away is not collapse");
  assert.equal(w.observe(3, lnK), undefined);
  assert.equal(w.observe(4, lnK + 1e-4), undefined);
  assert.equal(w.observe(5, 8.0), undefined, "a loss leaving ln K resets the count");
  assert.equal(w.observe(6, lnK), undefined);
  assert.equal(w.observe(7, lnK), undefined);
  const msg = w.observe(8, lnK);
  assert.match(msg ?? "", /stayed at ln K = 8\.3178 since step 6: the embeddings have collapsed/);
  assert.equal(w.observe(9, lnK), undefined, "reported once");
});
