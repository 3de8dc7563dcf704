// The side-by-side lab bench (scripts/bench/lab.ts) in smoke mode: one short round of kernel
// forwarding, nftables, HAProxy and weir nat (afpacket, 1 worker) on the two-armed topology.
// It checks the harness, never speed: the run finished, printed the markdown table and wrote
// the JSON with every column, traffic flowed where it must have, and no weir-bn-* namespace
// was left behind.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { labSkipReason } from '../helpers/net.js';
import { missingTools } from '../../scripts/bench/lab.js';
import { COLUMNS, METRICS, RESOURCES, type RowResult } from '../../scripts/bench/lab/results.js';

const BENCH = path.join(PACKAGE_ROOT, 'dist', 'scripts', 'bench', 'lab.js');

function skipReason(): string | undefined {
  const lab = labSkipReason();
  if (lab) return lab;
  const missing = missingTools();
  return missing.length ? `the lab bench needs ${missing.join(', ')} (the Debian packages in .ci/run)` : undefined;
}

function benchNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith('weir-bn-'));
}

const skip = skipReason();

describe('the lab bench harness in smoke mode', { skip }, () => {
  const out = mkdtempSync(path.join(tmpdir(), 'weir-bench-smoke-'));
  after(() => rmSync(out, { recursive: true, force: true }));
  let stdout = '';
  let rows: RowResult[] = [];
  let report: {
    columns: string[];
    rows: RowResult[];
    ratios: Record<string, Record<string, Record<string, number | null>>>;
  };

  test('finishes, prints the markdown table and writes the JSON report', () => {
    // Only the smoke knobs: a WEIR_BENCH_* setting of whoever runs the tests must not widen the run.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEIR_BENCH_')));
    const r = spawnSync(process.execPath, [BENCH], {
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 1 << 24,
      env: { ...env, WEIR_BENCH_SMOKE: '1', WEIR_BENCH_OUT: out, WEIR_BENCH_DOCS: '0' },
    });
    stdout = r.stdout;
    assert.equal(r.status, 0, `bench exited ${r.status} (${r.signal ?? ''}):\n${r.stderr.slice(-3000)}`);
    const header = stdout.split('\n').find((l) => l.startsWith('| variant |'));
    assert.ok(header, `a markdown table in:\n${stdout}`);
    for (const t of [...METRICS.map((m) => m.title), ...RESOURCES.map((x) => x.title)])
      assert.ok(header.includes(`| ${t} |`), `column "${t}" in ${header}`);
    const file = /^JSON: (.+)$/m.exec(stdout)?.[1];
    assert.ok(file, 'the JSON path is printed');
    report = JSON.parse(readFileSync(file, 'utf8')) as typeof report;
    rows = report.rows;
    assert.deepEqual(report.columns, COLUMNS);
  });

  test('has a row per smoke variant, each with every column', () => {
    assert.deepEqual(
      rows.map((r) => r.id),
      ['kernel', 'nftables', 'haproxy', 'weir-nat-afpacket-w1'],
    );
    for (const r of rows) {
      assert.deepEqual(Object.keys(r.values).sort(), [...COLUMNS].sort(), `${r.id}: every column`);
      assert.ok(stdout.includes(`| ${r.label} |`), `${r.id} is a row of the printed table`);
    }
  });

  test('traffic flowed through every peer and through weir (counts above zero; no speed asserted)', () => {
    const row = (id: string): RowResult => rows.find((r) => r.id === id)!;
    for (const id of ['kernel', 'nftables', 'haproxy', 'weir-nat-afpacket-w1']) {
      const r = row(id);
      assert.equal(r.status, 'ok', `${id} ran (${r.reason ?? ''})`);
      for (const k of ['conn_per_s', 'connect_p50_low_us', 'connect_p50_half_us', 'gbps_mtu1500'] as const) {
        assert.ok((r.values[k] ?? 0) > 0, `${id}: ${k} = ${r.values[k]} (errors: ${r.errors.join('; ')})`);
      }
    }
    for (const id of ['kernel', 'nftables', 'weir-nat-afpacket-w1'])
      assert.ok((row(id).values.udp_kpps ?? 0) > 0, `${id}: UDP packets reached the backends`);
    assert.equal(row('haproxy').values.udp_kpps, null, 'HAProxy has no UDP column figure');
    for (const id of ['kernel', 'nftables', 'haproxy']) {
      assert.ok((row(id).values.gbps_mtu9000 ?? 0) > 0, `${id}: iperf3 at MTU 9000`);
      assert.ok((row(id).values.gbps_offloads_on ?? 0) > 0, `${id}: iperf3 with offloads on`);
    }
    for (const id of ['haproxy', 'weir-nat-afpacket-w1'])
      assert.ok((row(id).values.rss_mib ?? 0) > 0, `${id}: memory read`);
    const w = report.ratios['weir-nat-afpacket-w1'];
    assert.ok(w, 'ratios for the weir row');
    for (const m of METRICS) assert.ok(m.key in w, `ratio entry for ${m.key}`);
  });

  test('leaves no weir-bn-* namespace behind', () => {
    assert.deepEqual(benchNamespaces(), []);
  });
});
