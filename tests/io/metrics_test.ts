import assert from "node:assert/strict";
import { MetricsLog, readMetrics, truncateMetrics } from "../../src/io/metrics.ts";

Deno.test("MetricsLog appends JSON lines, readMetrics ignores a torn last line, truncate drops later steps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/metrics.jsonl`;
    const log = MetricsLog.open(path);
    for (let s = 1; s <= 5; s++) log.write({ kind: "step", step: s, epoch: 0, loss: 1 / s });
    log.write({ kind: "epoch", step: 5, epoch: 0, loss: 0.5 });
    log.close();
    await Deno.writeTextFile(path, '{"kind":"step","st', { append: true });
    const all = readMetrics(path);
    assert.equal(all.length, 6);
    assert.equal(all[2].loss, 1 / 3);
    truncateMetrics(path, 3);
    const kept = readMetrics(path);
    assert.deepEqual(kept.map((r) => r.step), [1, 2, 3]);
    await Deno.writeTextFile(path, "not json\n{}\n");
    assert.throws(() => readMetrics(path), /line 1 is not JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
