import assert from "node:assert/strict";
import { keptSections } from "./report.ts";

Deno.test("keptSections: a regenerated report keeps every kept block of the old one, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_report_" });
  try {
    const doc = `${dir}/results.md`;
    assert.equal(await keptSections(doc), "", "no old report: nothing kept");
    const a = "<!-- kept:begin -->\n## A\n\ntext a\n<!-- kept:end -->";
    const b = "<!-- kept:begin -->\n## B\n<!-- kept:end -->";
    await Deno.writeTextFile(doc, `# Results\n\ngenerated\n\n${a}\n\nmore generated\n\n${b}\n`);
    assert.equal(await keptSections(doc), `\n${a}\n\n${b}\n`);
    await Deno.writeTextFile(doc, "# Results\n\n<!-- kept:begin -->\nunterminated\n");
    assert.equal(await keptSections(doc), "", "an unterminated block is not a block");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
