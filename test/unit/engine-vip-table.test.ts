// VipTable: lookups (exact port before "all ports", VIP vs SNAT addresses, backend ids) and the
// clear errors the control plane gets for inconsistent specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp } from '../../src/packet/index.js';
import { buildMaglev } from '../../src/lb/maglev.js';
import { VipTable, MODE_DSR_GRE, MODE_NAT, type VipSpec } from '../../src/lb/vip-table.js';
import { TABLE_OPTS, vipSpecs } from './engine-helpers.js';

const a = (s: string): Uint8Array => {
  const b = parseIp(s);
  if (!b) throw new Error(s);
  return b;
};

test('findVip prefers the exact port, falls back to an all-ports VIP, and tells VIP from SNAT addresses', () => {
  const specs = vipSpecs();
  const allPorts: VipSpec = { ...specs[0], id: 99, name: 'nat4-all', port: 0 };
  const t = new VipTable([...specs, allPorts], TABLE_OPTS);
  const v4 = a('198.18.0.10');
  assert.equal(t.vipNames[t.findVip(4, v4, 0, 6, 80)], 'nat4');
  assert.equal(t.vipNames[t.findVip(4, v4, 0, 6, 81)], 'nat4-all');
  assert.equal(t.vipNames[t.findVip(4, v4, 0, 17, 5300)], 'nat4udp');
  assert.equal(t.findVip(4, v4, 0, 17, 5301), -1);
  assert.equal(t.vipNames[t.findVip(6, a('fd00::20'), 0, 6, 443)], 'gre6');
  assert.equal(t.findVip(6, a('fd00::21'), 0, 6, 443), -1);
  assert.equal(t.vipMode[t.findVip(4, a('198.18.0.20'), 0, 6, 80)], MODE_DSR_GRE);
  assert.equal(t.vipMode[t.findVip(4, v4, 0, 6, 80)], MODE_NAT);
  assert.ok(t.isVipAddress(4, a('198.18.0.30'), 0));
  assert.ok(!t.isVipAddress(4, a('198.18.0.100'), 0));
  assert.ok(t.isSnatAddress(4, a('198.18.0.100'), 0));
  assert.ok(t.isSnatAddress(6, a('fd00::100'), 0));
  assert.ok(!t.isSnatAddress(4, a('198.18.0.10'), 0));
  const v = t.findVip(4, v4, 0, 6, 80);
  assert.equal(t.backendNames[t.backendOf(v, 101)], specs[0].backends[1].name);
  assert.equal(t.backendOf(v, 7), -1);
  assert.equal(t.snatPools, 2, 'one pool per SNAT address and range');
});

test('inconsistent specs are refused with an error naming the VIP or backend', () => {
  const s = vipSpecs();
  const cases: Array<[string, VipSpec[], object, RegExp]> = [
    ['duplicate id', [s[0], { ...s[3], id: 1 }], TABLE_OPTS, /id 1 is used twice/],
    [
      'duplicate address/port/proto',
      [s[0], { ...s[0], id: 50, name: 'again' }],
      TABLE_OPTS,
      /VIP again: another VIP already has 198.18.0.10 port 80 tcp/,
    ],
    ['nat without SNAT', [{ ...s[0], snat: undefined }], TABLE_OPTS, /VIP nat4: nat mode needs an IPv4 SNAT address/],
    [
      'nat to another family',
      [{ ...s[0], backends: s[2].backends, maglev: s[2].maglev }],
      TABLE_OPTS,
      /nat mode needs a backend of the VIP's family/,
    ],
    ['gre without a source', [s[3]], { seed: 1 }, /needs greSource4/],
    [
      'l2 without a MAC',
      [{ ...s[6], backends: s[6].backends.map((b) => ({ ...b, mac: undefined })) }],
      TABLE_OPTS,
      /dsr-l2 mode needs the backend's mac/,
    ],
    [
      'Maglev/backends mismatch',
      [{ ...s[3], maglev: buildMaglev([{ id: 'x', weight: 1 }], { size: 7, seed: 1 }) }],
      TABLE_OPTS,
      /3 backends but the Maglev table has 1/,
    ],
    ['bad address', [{ ...s[3], address: '300.1.1.1' }], TABLE_OPTS, /VIP gre4 address: "300.1.1.1" is not/],
    ['bad fragments policy', [s[3]], { ...TABLE_OPTS, fragments: 'reassemble' }, /fragments policy/],
  ];
  assert.ok(cases.length > 0);
  for (const [what, specs, opts, re] of cases)
    assert.throws(() => new VipTable(specs, opts as typeof TABLE_OPTS), re, what);
});
