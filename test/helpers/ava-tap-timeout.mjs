// Loaded into ava's own process by test/run.mjs (node --import): when ava's inactivity timeout fires, its TAP
// reporter (ava 7.0.0, lib/reporters/tap.js writeTimeout) hands writeTest a plain Error where a serialised one is
// expected, and dumpError then throws "Cannot set properties of undefined (setting 'name')": the run crashed
// without naming the test that stalled. This replaces writeTimeout with one that writes each pending test as a
// failing TAP line naming its file and title. ESM caches a module per URL, so this is the class ava's CLI uses.
import TapReporter from "../../node_modules/ava/lib/reporters/tap.js";

TapReporter.prototype.writeTimeout = function writeTimeout(evt) {
  const message = `stalled: no test completed within the last ${evt.period} ms of inactivity (ava's timeout)`;
  let named = 0;
  for (const [testFile, tests] of evt.pendingTests) {
    for (const title of tests) {
      named++;
      // A serialised error as dumpError takes it (its "native" form), naming the file.
      const text = `${this.relativeFile(testFile)}: ${title}: ${message}`;
      const err = { type: "native", name: "Error", originalError: { message: text }, stack: `Error: ${text}` };
      this.writeTest({ testFile, title, err }, { passed: false, todo: false, skip: false });
    }
  }
  if (named === 0) {
    this.writeCrash({}, `${message}, and no test was running`);
  }
};
