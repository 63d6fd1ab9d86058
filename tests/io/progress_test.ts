import assert from "node:assert/strict";
import { formatDuration, Progress, progressLine } from "../../src/io/progress.ts";

Deno.test("progressLine() shows epoch, step, loss, lr, images/s and ETA", () => {
  const line = progressLine(
    { epoch: 0, epochs: 2, step: 10, totalSteps: 20, loss: 7.5, lr: 0.06, imagesPerSecond: 256 },
    256,
  );
  assert.match(
    line,
    /^epoch 1\/2 \[#{12}-{12}\] step 10\/20 loss 7\.5000 lr 6\.00e-2 256\.0 img\/s ETA 10s$/,
  );
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(185), "3m05s");
});

Deno.test("Progress prints plain lines off a terminal and redraws in place on one", () => {
  const out: string[] = [];
  const state = { epoch: 0, epochs: 1, step: 1, totalSteps: 2, loss: 1, lr: 1, imagesPerSecond: 1 };
  const plain = new Progress({ interactive: false, write: (t) => out.push(t) });
  plain.update(state, 1);
  plain.message("done");
  assert.ok(out[0].endsWith("\n") && !out[0].startsWith("\r"));
  assert.equal(out[1], "done\n");
  out.length = 0;
  const tty = new Progress({ interactive: true, write: (t) => out.push(t) });
  tty.update(state, 1);
  tty.message("note");
  tty.close();
  assert.ok(out[0].startsWith("\r\x1b[2K"));
  assert.deepEqual(out.slice(1), ["\n", "note\n"]);
});
