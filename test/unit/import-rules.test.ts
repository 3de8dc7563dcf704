// Imports run one way (scripts/import-rules.ts): no file of src/ imports a floor its rules do not
// allow, and the checker does see a wrong import, static, dynamic or re-exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkImports, RULES } from '../../scripts/import-rules.js';
import { PACKAGE_ROOT } from '../../src/version.js';

test('every import in src/ follows the floor rules', () => {
  const r = checkImports(path.join(PACKAGE_ROOT, 'src'));
  assert.ok(r.files > 50 && r.imports > 200, `checked ${r.files} files, ${r.imports} imports`);
  assert.deepEqual(r.violations, []);
});

test('the checker reports a wrong import, a dynamic one and a re-export, and lets allowed ones and the root files pass', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weir-imports-'));
  try {
    const put = (f: string, text: string): void => {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), text);
    };
    put('log.ts', 'export const x = 1;\n');
    put(
      'lb/engine.ts',
      "import { io } from '../io/batch.js';\nimport { x } from '../log.js';\nimport { p } from '../packet/parse.js';\n",
    );
    put('packet/parse.ts', "export { y } from '../lb/engine.js';\nconst m = await import('../daemon/run.js');\n");
    put('daemon/run.ts', "import { e } from '../lb/engine.js';\n");
    const r = checkImports(dir);
    assert.deepEqual(r.violations.map((v) => `${v.file}:${v.line} ${v.from}->${v.to}`).sort(), [
      'lb/engine.ts:1 lb->io',
      'packet/parse.ts:1 packet->lb',
      'packet/parse.ts:2 packet->daemon',
    ]);
    assert.equal(RULES.lb.includes('io'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
