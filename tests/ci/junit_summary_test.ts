import assert from "node:assert/strict";
import { countJunit, summaryLine } from "../../tasks/junit_summary.ts";

Deno.test("countJunit() counts passed, failed and skipped test cases", () => {
  const xml = `<?xml version="1.0"?><testsuites><testsuite name="a">
    <testcase name="ok one" classname="a" time="0.1"></testcase>
    <testcase name="ok two" classname="a" time="0.1"/>
    <testcase name="bad" classname="a"><failure message="x">boom</failure></testcase>
    <testcase name="skipped" classname="a"><skipped/></testcase>
  </testsuite></testsuites>`;
  const c = countJunit(xml);
  assert.deepEqual(c, { passed: 2, failed: 1, skipped: 1 });
  assert.equal(summaryLine(c), "2 passed, 1 failed, 1 skipped");
  assert.equal(summaryLine({ passed: 3, failed: 0, skipped: 0 }), "3 passed, 0 failed");
});
