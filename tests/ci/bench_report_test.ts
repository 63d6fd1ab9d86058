import assert from "node:assert/strict";
import { replaceSection } from "../../bench/report.ts";

Deno.test("replaceSection() replaces one benchmark's section and keeps the rest", () => {
  const first = replaceSection("", "step", "| a | b |");
  assert.equal(first, "# Benchmarks\n\n<!-- step:begin -->\n\n| a | b |\n\n<!-- step:end -->\n");
  const both = replaceSection(first + "\nnotes\n", "data", "data table");
  assert.match(both, /step:end -->\n\nnotes\n\n<!-- data:begin -->\n\ndata table\n\n<!-- data:end/);
  const again = replaceSection(both, "step", "new");
  assert.match(again, /<!-- step:begin -->\n\nnew\n\n<!-- step:end -->/);
  assert.ok(again.includes("notes") && again.includes("data table") && !again.includes("| a |"));
});
