// health_check.via: tunnel in the config: only dsr-gre with tcp/http checks, one distinct probe
// source_address per backend; the per-backend overrides survive normalization and reach the
// monitor's spec with the VIP address the tunnel connects to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, parseConfigText } from '../../src/config/load.js';
import { vipSpecFromConfig } from '../../src/health/options.js';

function cfg(mode: string, type: string, sources: (string | null)[]): string {
  const backends = sources
    .map(
      (s, i) => `      - address: 198.18.1.${21 + i}\n${s ? `        health_check: { source_address: ${s} }\n` : ''}`,
    )
    .join('');
  return `instance:\n  name: t\n  addresses: [198.18.1.11]\n  interfaces: [fab0]\nvips:\n  - name: web\n    address: 198.18.100.2\n    port: 80\n    mode: ${mode}\n    health_check:\n      type: ${type}\n      via: tunnel\n    backends:\n${backends}`;
}

function problems(text: string): string[] {
  const r = parseConfigText(text);
  return r.ok ? [] : r.issues.map(formatIssue).map((m) => m.replace(/ \(line.*$/, ''));
}

const cases: { what: string; text: string; want: string[] }[] = [
  { what: 'dsr-gre, http, distinct sources', text: cfg('dsr-gre', 'http', ['198.18.1.111', '198.18.1.112']), want: [] },
  { what: 'dsr-gre, tcp', text: cfg('dsr-gre', 'tcp', ['198.18.1.111']), want: [] },
  {
    what: 'nat',
    text: cfg('nat', 'http', ['198.18.1.111']),
    want: ['vips[0].health_check.via: tunnel probing needs mode dsr-gre, got nat'],
  },
  {
    what: 'dsr-l2',
    text: cfg('dsr-l2', 'tcp', ['198.18.1.111']).replace(
      'address: 198.18.1.21\n',
      'address: 198.18.1.21\n        mac: 02:00:00:00:00:01\n',
    ),
    want: ['vips[0].health_check.via: tunnel probing needs mode dsr-gre, got dsr-l2'],
  },
  {
    what: 'udp check',
    text: cfg('dsr-gre', 'udp', ['198.18.1.111']),
    want: ['vips[0].health_check.via: tunnel probing is for tcp and http checks, got udp'],
  },
  {
    what: 'a backend without a source',
    text: cfg('dsr-gre', 'http', ['198.18.1.111', null]),
    want: ['vips[0].backends[1].health_check.source_address: via: tunnel needs a probe source address per backend'],
  },
  {
    what: 'two backends sharing a source',
    text: cfg('dsr-gre', 'http', ['198.18.1.111', '198.18.1.111']),
    want: ['vips[0].backends[1].health_check.source_address: 198.18.1.111 already probes another backend of this VIP'],
  },
];

test('via: tunnel is accepted only for dsr-gre tcp/http checks with one distinct source_address per backend', () => {
  assert.ok(cases.length >= 7);
  for (const c of cases) {
    const got = problems(c.text);
    // dsr-l2 needs a MAC on every backend: only the via message matters here.
    assert.deepEqual(c.what === 'dsr-l2' ? got.filter((m) => m.includes('via')) : got, c.want, c.what);
  }
});

test('per-backend source_address survives normalization and the health spec carries the VIP address for the tunnel', () => {
  const r = parseConfigText(cfg('dsr-gre', 'http', ['198.18.1.111', '198.18.1.112']));
  assert.ok(r.ok);
  const spec = vipSpecFromConfig(r.config.vips[0]);
  assert.equal(spec.check.via, 'tunnel');
  assert.equal(spec.check.vipAddress, '198.18.100.2');
  assert.deepEqual(
    spec.backends.map((b) => b.check?.sourceAddress),
    ['198.18.1.111', '198.18.1.112'],
  );
});

test('a direct check has no VIP address in its spec and via defaults to direct', () => {
  const r = parseConfigText(cfg('dsr-gre', 'http', ['198.18.1.111']).replace('      via: tunnel\n', ''));
  assert.ok(r.ok);
  const spec = vipSpecFromConfig(r.config.vips[0]);
  assert.equal(spec.check.via, 'direct');
  assert.equal(spec.check.vipAddress, undefined);
});
