/**
 * `deno task train` on a real terminal 70 columns wide (a pseudo-terminal from util-linux
 * `script`, its size set by `stty`), its output replayed on a screen model that wraps long lines
 * as a terminal does: the bar is redrawn in place (many redraws, no stale rows, nothing wider than
 * the terminal: issue 13's 70-column terminal), the kNN monitor shows a sub-bar of the images it
 * encodes that its result then replaces, and the header, results and summary stay readable.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { DEVICE, ROOT, taskCommand, writeClassPngs, writeTinyConfig } from "./cli_helpers.ts";

const SCRIPT = "/usr/bin/script";

/**
 * A terminal `width` columns wide: `\r`, `\n`, erase-line, cursor-to-column. Counts the wraps of
 * lines drawn in place (after `\r` + erase-line): a wrapped redraw leaves stale rows.
 */
class Screen {
  rows: string[][] = [[]];
  row = 0;
  col = 0;
  wraps = 0;
  #redrawn = false;
  constructor(readonly width: number) {}
  write(text: string): void {
    for (let i = 0; i < text.length; i++) {
      // deno-lint-ignore no-control-regex
      const csi = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(text.slice(i, i + 16));
      if (csi) {
        if (csi[2] === "K" && csi[1] === "2") {
          this.rows[this.row] = [];
          // the display's redraw is `\r` + erase-line (Deno's own start-up clearing is not)
          this.#redrawn = text[i - 1] === "\r";
        }
        if (csi[2] === "G") this.col = Math.max(0, Number(csi[1] || 1) - 1);
        i += csi[0].length - 1;
      } else if (text[i] === "\r") {
        this.col = 0;
      } else if (text[i] === "\n") {
        this.newline();
      } else {
        if (this.col === this.width) {
          if (this.#redrawn) this.wraps++;
          this.newline();
        }
        this.rows[this.row][this.col++] = text[i];
      }
    }
  }
  newline(): void {
    this.#redrawn = false;
    this.row++;
    this.col = 0;
    this.rows[this.row] ??= [];
  }
  lines(): string[] {
    return this.rows.map((r) => Array.from(r, (c) => c ?? " ").join("").trimEnd())
      .filter((l) => l !== "");
  }
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

Deno.test({
  name: existsSync(SCRIPT)
    ? "train on a 70-column terminal: one bar redrawn in place, a kNN sub-bar, no wrapped lines"
    : "train on a terminal (skipped: util-linux script not installed)",
  ignore: !existsSync(SCRIPT),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_tty_" });
    try {
      const photos = `${dir}/photos`;
      writeClassPngs(`${photos}/left`, 24, 0, 1);
      writeClassPngs(`${photos}/right`, 24, 1, 2);
      const { flags, script } = taskCommand("train");
      const args = [
        ...flags,
        `${ROOT}/${script}`,
        "--data",
        photos,
        "--width",
        "4",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--knn-every",
        "1",
        "--config",
        writeTinyConfig(`${dir}/tiny.json`, { logEvery: 1 }),
        "--device",
        DEVICE,
        "--threads",
        "1",
        "--workers",
        "0",
        "--out",
        `${dir}/run`,
      ];
      const command = `stty cols 70 rows 40; exec ${quote(Deno.execPath())} run ${
        args.map(quote).join(" ")
      }`;
      const out = await new Deno.Command(SCRIPT, {
        args: ["-qec", command, "/dev/null"],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", TERM: "xterm" },
      }).output();
      const raw = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, raw + new TextDecoder().decode(out.stderr));
      const screen = new Screen(70);
      screen.write(raw);
      const lines = screen.lines();
      const shown = lines.join("\n");

      // Redrawn in place: every step drew the bar, one line at a time, none wider than 70.
      // deno-lint-ignore no-control-regex
      const draws = raw.match(/\r\x1b\[2Kepoch [12]\/2 \[[#-]+\] step \d\/6 /g) ?? [];
      assert.ok(draws.length >= 6, `${draws.length} redraws:\n${shown}`);
      assert.equal(screen.wraps, 0, `a redrawn line wider than 70 columns wrapped:\n${shown}`);
      assert.ok(lines.filter((l) => /step \d\/6/.test(l)).length <= 1, `stale bars:\n${shown}`);
      // The kNN monitor: a sub-bar while encoding, replaced by its result.
      assert.match(raw, /epoch 1: kNN monitor, encoding \[[#-]+\] \d+\/\d+ images/);
      assert.ok(!lines.some((l) => l.includes("kNN monitor, encoding")), shown);
      for (const e of [1, 2]) {
        assert.equal(lines.filter((l) => l.startsWith(`epoch ${e}: kNN top-1`)).length, 1, shown);
      }
      assert.match(shown, /^ReSSL image-folder: ResNet-18 width 4/m);
      assert.match(shown, /^done: 6 steps/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
