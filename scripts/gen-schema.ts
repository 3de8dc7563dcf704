// Writes schema/weir.schema.json from the zod schema (src/config/schema.ts).
// Run after changing the schema: npx tsc -p . && node dist/scripts/gen-schema.js
// test/unit/config-json-schema.test.ts fails while the committed file is stale.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/version.js';
import { weirJsonSchemaText } from '../src/config/json-schema.js';

const out = path.join(PACKAGE_ROOT, 'schema', 'weir.schema.json');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, weirJsonSchemaText());
console.log(`wrote ${path.relative(process.cwd(), out) || out}`);
