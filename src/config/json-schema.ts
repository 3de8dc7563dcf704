// The JSON Schema of weir.yaml, generated from the zod schema so the two cannot drift. Editors
// use schema/weir.schema.json (written by scripts/gen-schema.ts) to check configs as you type.
import { z } from 'zod';
import { configSchema } from './schema.js';

export function weirJsonSchema(): Record<string, unknown> {
  // io: 'input' describes what a person writes: fields with defaults are optional. Draft 7 is
  // the draft editors' YAML language servers support best.
  const s = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  return s;
}

/** The committed file's exact text: two-space JSON and a final newline. */
export function weirJsonSchemaText(): string {
  return JSON.stringify(weirJsonSchema(), null, 2) + '\n';
}
