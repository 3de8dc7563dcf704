// schema/weir.schema.json is generated from the zod schema; the committed file must be current.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { weirJsonSchema, weirJsonSchemaText } from '../../src/config/json-schema.js';

test('the committed schema/weir.schema.json equals the one generated from the zod schema', () => {
  const committed = readFileSync(path.join(PACKAGE_ROOT, 'schema', 'weir.schema.json'), 'utf8');
  assert.equal(committed, weirJsonSchemaText(), 'stale: run `npx tsc -p . && node dist/scripts/gen-schema.js`');
});

/** The parts of a JSON Schema node this test reads. */
interface SchemaNode {
  additionalProperties?: boolean;
  required?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

test('the JSON Schema rejects unknown keys and documents defaults and ranges', () => {
  const s = weirJsonSchema() as SchemaNode;
  assert.equal(s.additionalProperties, false);
  const vip = s.properties!.vips.items!;
  assert.equal(vip.additionalProperties, false);
  assert.deepEqual(vip.required!.sort(), ['address', 'backends', 'name', 'port']);
  assert.equal(vip.properties!.table_size.default, 65537);
  assert.deepEqual(vip.properties!.mode.enum, ['nat', 'dsr-gre', 'dsr-l2']);
  const weight = vip.properties!.backends.items!.properties!.weight;
  assert.deepEqual([weight.minimum, weight.maximum, weight.default], [0, 65535, 100]);
  assert.equal(s.properties!.control.properties!.socket.default, '/run/weir/weir.sock');
});
