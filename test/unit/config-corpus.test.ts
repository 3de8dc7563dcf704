// The config corpus: every file in test/fixtures/configs/bad/ gives exactly the messages in its
// .expected file (path, what is wrong, line and column), and every file in good/ validates.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { formatIssue, parseConfigText } from '../../src/config/load.js';

const dir = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs');
const bad = readdirSync(path.join(dir, 'bad'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const good = readdirSync(path.join(dir, 'good'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('the bad-config corpus and the good-config corpus are not empty', () => {
  assert.ok(bad.length >= 15, `only ${bad.length} bad configs`);
  assert.ok(good.length >= 3, `only ${good.length} good configs`);
});

describe('each bad config is rejected with exactly the expected messages', () => {
  for (const f of bad) {
    test(f, () => {
      const expected = readFileSync(path.join(dir, 'bad', f.replace(/\.yaml$/, '.expected')), 'utf8')
        .trimEnd()
        .split('\n');
      const r = parseConfigText(readFileSync(path.join(dir, 'bad', f), 'utf8'));
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.deepEqual(r.issues.map(formatIssue), expected);
      for (const i of r.issues)
        assert.ok(i.line !== undefined && i.col !== undefined, `no position: ${formatIssue(i)}`);
    });
  }
});

describe('each good config validates', () => {
  for (const f of good) {
    test(f, () => {
      const r = parseConfigText(readFileSync(path.join(dir, 'good', f), 'utf8'));
      assert.deepEqual(r.ok ? [] : r.issues.map(formatIssue), []);
    });
  }
});

test('the example from the issue reads exactly as specified', () => {
  const r = parseConfigText(readFileSync(path.join(dir, 'bad', 'weight-negative.yaml'), 'utf8'));
  assert.ok(!r.ok);
  assert.deepEqual(r.issues.map(formatIssue), [
    'vips[1].backends[0].weight: must be an integer 0..65535, got -1 (line 14, col 17)',
  ]);
});
