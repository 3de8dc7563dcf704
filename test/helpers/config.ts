// Configs for tests: parse YAML text or fail the test with weir's own messages, and build a
// small valid config from only the parts a test cares about.
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { formatIssue, parseConfigText } from '../../src/config/load.js';
import type { WeirConfig } from '../../src/config/schema.js';

/** Parses config text, failing the test with weir's issue messages when it is invalid. */
export function parseConfig(text: string): WeirConfig {
  const r = parseConfigText(text);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

type Obj = Record<string, unknown>;

export interface TestVip extends Obj {
  name: string;
  address: string;
  port: number;
  backends: Obj[];
}

export interface TestConfigParts {
  /** control.socket (required: every daemon a test starts gets its own socket). */
  socket: string;
  instance?: Obj;
  vips: TestVip[];
  /** Any other top-level sections (bgp, cluster, conntrack, metrics, nat …), merged over the defaults. */
  [section: string]: unknown;
}

/** Defaults for a daemon under test: no metrics listener, a small connection table, no health probes. */
const DEFAULTS = {
  instance: { name: 'test', addresses: ['198.18.0.10'] },
  conntrack: { capacity: 1024 },
  metrics: { listen: false },
} as const;

const VIP_DEFAULTS = { table_size: 251, health_check: { type: 'none' } } as const;

/**
 * YAML for a daemon under test. Sections given replace the default section key by key (one
 * level deep); each VIP gets table_size 251 and no health check unless it says otherwise.
 */
export function configYaml(parts: TestConfigParts): string {
  const { socket, vips, ...rest } = parts;
  const doc: Obj = {};
  for (const [k, v] of Object.entries(DEFAULTS)) doc[k] = { ...v };
  for (const [k, v] of Object.entries(rest)) {
    const base = doc[k];
    doc[k] = isObj(base) && isObj(v) ? { ...base, ...v } : v;
  }
  doc.control = { ...(isObj(doc.control) ? doc.control : {}), socket };
  doc.vips = vips.map((v) => ({ ...VIP_DEFAULTS, ...v }));
  return YAML.stringify(doc, { aliasDuplicateObjects: false });
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
