// The weir command line answers --version and --help without privileges or a config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT, VERSION } from '../../src/version.js';

const cli = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

test('weir --version prints the package version', () => {
  const out = execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' });
  assert.equal(out.trim(), VERSION);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

test('weir --help names the program and its options', () => {
  const out = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  assert.match(out, /Usage: weir/);
  assert.match(out, /--version/);
});
