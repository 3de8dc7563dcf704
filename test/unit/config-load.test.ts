// Config loading: defaults, normalization, the shipped example, error positions and ConfigError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { PACKAGE_ROOT } from '../../src/version.js';
import { ConfigError, formatIssue, loadConfigFile, parseConfigText, pathText } from '../../src/config/load.js';
import { configSchema, vipSchema } from '../../src/config/schema.js';
import { DEFAULT_TIMEOUTS } from '../../src/lb/conntrack.js';
import { DEFAULT_TABLE_SIZE } from '../../src/lb/maglev.js';

const example = path.join(PACKAGE_ROOT, 'examples', 'weir.yaml');

function ok(text: string) {
  const r = parseConfigText(text);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

test('an empty file gives every default: no VIPs, the default socket, the table defaults', () => {
  const c = ok('');
  assert.deepEqual(c.vips, []);
  assert.equal(c.control.socket, '/run/weir/weir.sock');
  assert.equal(c.instance.io, 'afpacket');
  assert.equal(c.cluster.hash_seed, 'weir');
  assert.equal(c.conntrack.timeouts.established, DEFAULT_TIMEOUTS.established);
  assert.equal(c.conntrack.timeouts.udp, DEFAULT_TIMEOUTS.udp);
});

test('normalization names backends "address:port", fills the VIP port and writes IPv6 canonically', () => {
  const c = ok(`
instance: { addresses: ["FD00:0::0010"] }
vips:
  - { name: a, address: "FD00::0080", port: 443, backends: [{ address: "FD00:1:0::1" }, { name: b2, address: fd00:1::2, port: 8443 }] }
  - { name: all, address: fd00::81, port: all, health_check: { type: none }, backends: [{ address: fd00:1::3 }] }`);
  assert.deepEqual(c.instance.addresses, ['fd00::10']);
  assert.equal(c.vips[0].address, 'fd00::80');
  assert.deepEqual(c.vips[0].backends, [
    { name: '[fd00:1::1]:443', address: 'fd00:1::1', port: 443, weight: 100 },
    { name: 'b2', address: 'fd00:1::2', port: 8443, weight: 100 },
  ]);
  assert.deepEqual(c.vips[1].backends, [{ name: '[fd00:1::3]:all', address: 'fd00:1::3', weight: 100 }]);
});

test('the example config validates and shows every top-level setting at its default', () => {
  const text = readFileSync(example, 'utf8');
  const c = ok(text);
  const defaults = configSchema.parse({});
  for (const key of ['cluster', 'conntrack', 'bgp', 'metrics', 'control', 'rate_limits', 'log'] as const) {
    assert.deepEqual(c[key], defaults[key], `examples/weir.yaml ${key} differs from the defaults`);
  }
  assert.equal(c.instance.name, defaults.instance.name);
  assert.equal(c.instance.io, defaults.instance.io);
  assert.equal(c.instance.workers, defaults.instance.workers);
  // Every key the schema knows appears in the file (as a setting or a commented-out line).
  const raw = YAML.parse(text) as { vips: Record<string, unknown>[] };
  const first = raw.vips[0];
  for (const k of Object.keys(vipSchema.shape)) assert.ok(k in first, `the first example VIP lacks ${k}`);
  for (const k of ['local_as', 'router_id', 'med', 'remote_as', 'passive', 'mac', 'port: 8080'])
    assert.ok(text.includes(k), `example never mentions ${k}`);
});

test('the first example VIP sets every VIP option to its default', () => {
  const c = ok(readFileSync(example, 'utf8'));
  const v = c.vips[0];
  const d = vipSchema.parse({ name: 'x', address: '198.18.0.1', port: 1, backends: [{ address: '198.18.0.2' }] });
  assert.equal(v.table_size, DEFAULT_TABLE_SIZE);
  for (const k of ['protocol', 'mode', 'table_size', 'hash_fields', 'min_healthy_backends', 'health_check'] as const) {
    assert.deepEqual(v[k], d[k], `example vips[0].${k} is not the default`);
  }
  assert.equal(v.backends[0].weight, d.backends[0].weight);
});

test('paths print as YAML paths with indexes', () => {
  assert.equal(pathText(['vips', 1, 'backends', 0, 'weight']), 'vips[1].backends[0].weight');
  assert.equal(pathText([]), '(top level)');
});

test('every problem is reported at once, in file order', () => {
  const r = parseConfigText(`
vips:
  - name: a
    address: 198.18.0.1
    port: 70000
    backends: [{ address: 198.18.1.1, weight: x }]
  - name: a
    address: nope
    port: 80
    backends: [{ address: 198.18.1.1 }]
`);
  assert.ok(!r.ok);
  const lines = r.issues.map((i) => i.line ?? 0);
  assert.deepEqual(
    [...lines].sort((a, b) => a - b),
    lines,
  );
  assert.deepEqual(
    r.issues.map((i) => i.where),
    ['vips[0].port', 'vips[0].backends[0].weight', 'vips[1].address'],
  );
});

test('loadConfigFile throws a ConfigError listing every problem, and one for a missing file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-config-'));
  try {
    const f = path.join(dir, 'w.yaml');
    writeFileSync(f, 'vips: [{ name: a }]\nlog: { level: loud }\n');
    assert.throws(
      () => loadConfigFile(f),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.length === 4 &&
        e.message.startsWith(`${f}: 4 problems\n`) &&
        e.message.includes(
          'log.level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud" (line 2, col 15)',
        ),
    );
    assert.throws(
      () => loadConfigFile(path.join(dir, 'missing.yaml')),
      (e: unknown) => e instanceof ConfigError && /cannot read: ENOENT/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
