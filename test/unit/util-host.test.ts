// The host-command runner: stdout back, stdin in, and failures that name the command and say
// what it said, or that the tool is missing and which package has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHost, runHostAsync } from '../../src/util/host.js';

test('runHost returns stdout, feeds stdin, and names the command and its stderr when it fails', () => {
  assert.equal(runHost(['sh', '-c', 'echo hello']), 'hello\n');
  assert.equal(runHost(['cat'], { input: 'script\n' }), 'script\n');
  assert.throws(
    () => runHost(['sh', '-c', 'echo "no such table" >&2; exit 3']),
    /^Error: `sh -c echo "no such table" >&2; exit 3` failed: no such table$/,
  );
  assert.throws(() => runHost(['weir-no-such-tool', '-x']), /weir-no-such-tool is not installed$/);
  assert.throws(() => runHost(['sleep', '5'], { timeoutMs: 100 }), /`sleep 5` failed/);
});

test('runHostAsync does the same without blocking', async () => {
  assert.equal(await runHostAsync(['cat'], { input: 'x' }), 'x');
  await assert.rejects(runHostAsync(['sh', '-c', 'echo bad >&2; exit 1']), /failed: bad$/);
  await assert.rejects(runHostAsync(['weir-no-such-tool']), /is not installed/);
});
