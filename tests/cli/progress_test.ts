/**
 * The progress display on a simulated terminal: a 70-column screen that wraps long lines as a
 * real one does. Redraws in place must leave exactly one line (a line wider than the terminal
 * wraps, and `\r` + erase-line then only clears its last row: the stale rows of issue 13);
 * activity lines (kNN, checkpoint) replace the bar; the ETA adds the pending non-training work.
 */
import assert from "node:assert/strict";
import { activityLine, Progress, progressLine } from "../../src/io/progress.ts";

/** A terminal `width` columns wide that understands `\r`, `\n` and erase-line. */
class Screen {
  rows: string[][] = [[]];
  row = 0;
  col = 0;
  constructor(readonly width: number) {}
  write(text: string): void {
    for (let i = 0; i < text.length; i++) {
      if (text.startsWith("\x1b[2K", i)) {
        this.rows[this.row] = [];
        i += 3;
      } else if (text[i] === "\r") {
        this.col = 0;
      } else if (text[i] === "\n") {
        this.newline();
      } else {
        if (this.col === this.width) this.newline();
        this.rows[this.row][this.col++] = text[i];
      }
    }
  }
  newline(): void {
    this.row++;
    this.col = 0;
    this.rows[this.row] ??= [];
  }
  lines(): string[] {
    return this.rows.map((r) => Array.from(r, (c) => c ?? " ").join("").trimEnd())
      .filter((l) => l !== "");
  }
}

const state = (step: number) => ({
  epoch: 2,
  epochs: 200,
  step,
  totalSteps: 46800,
  loss: 7.123456,
  lr: 0.0599,
  imagesPerSecond: 912.3,
});

Deno.test("progressLine() fits the terminal: never wider than columns - 1, the essentials kept", () => {
  for (const columns of [30, 40, 50, 70, 80, 120, 200]) {
    const line = progressLine(state(12345), 256, columns);
    assert.ok(line.length <= columns - 1, `${columns}: ${line.length} ${line}`);
    if (columns >= 50) {
      assert.match(line, /step 12345\/46800/);
      assert.match(line, /loss 7\.1235/);
      assert.match(line, /ETA /);
    }
  }
  const wide = progressLine(state(12345), 256, 200);
  assert.match(
    wide,
    /^epoch 3\/200 \[#*-*\] step 12345\/46800 loss 7\.1235 lr 5\.99e-2 912\.3 img\/s ETA /,
  );
  assert.ok(wide.includes(`[${"#".repeat(8)}${"-".repeat(22)}]`), "bar of 30, 26 % done");
  const narrow = progressLine(state(12345), 256, 50);
  assert.doesNotMatch(narrow, /lr /, "the lr goes first when space is short");
});

Deno.test("a 70-column terminal shows one progress line after many redraws (no stale lines)", () => {
  const screen = new Screen(70);
  const p = new Progress({ interactive: true, write: (t) => screen.write(t), columns: () => 70 });
  for (let s = 1; s <= 50; s++) p.update(state(s * 20), 256);
  assert.equal(screen.lines().length, 1, screen.lines().join("\n"));
  assert.match(screen.lines()[0], /step 1000\/46800/);
  // The kNN monitor's sub-bar replaces the bar in place, then its result is a line of its own.
  for (let done = 4096; done <= 70000; done += 4096) {
    p.activity("epoch 3: kNN monitor, encoding", done, 70000, "images");
  }
  assert.equal(screen.lines().length, 1);
  assert.match(screen.lines()[0], /^epoch 3: kNN monitor, encoding \[#+-*\] 69632\/70000 images$/);
  p.message("epoch 3: kNN top-1 80.00% top-5 99.00%");
  p.update(state(1100), 256);
  p.close();
  assert.deepEqual(screen.lines().length, 2, screen.lines().join("\n"));
  assert.match(screen.lines()[0], /kNN top-1 80\.00%/);
  assert.match(screen.lines()[1], /step 1100/);
});

Deno.test("the ETA adds the pending kNN/checkpoint time; plain output prints an activity once", () => {
  const s = { ...state(46800 - 256 * 4 / 256), imagesPerSecond: 256 }; // 4 steps of 1 s left
  assert.match(progressLine(s, 256), /ETA 4s$/);
  assert.match(progressLine(s, 256, undefined, 60), /ETA 1m04s$/);
  const out: string[] = [];
  const p = new Progress({ interactive: false, write: (t) => out.push(t) });
  p.setPendingSeconds(60);
  p.update(s, 256);
  assert.match(out[0], /ETA 1m04s\n$/);
  for (let d = 1; d <= 5; d++) p.activity("epoch 1: kNN monitor, encoding", d, 5, "images");
  p.activity("epoch 1: writing the checkpoint");
  assert.deepEqual(out.slice(1), [
    "epoch 1: kNN monitor, encoding\n",
    "epoch 1: writing the checkpoint\n",
  ]);
  assert.equal(activityLine("x", 1, 2, "", 12), "x 1/2");
  assert.ok(activityLine("a long label", 5, 10, "images", 40).length <= 39);
});
