// Table publication to workers (control tables → message → VipTable in the worker) and the
// nftables ingress ruleset that keeps the host's kernel off VIP and NAT return traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, parseConfigText } from '../../src/config/load.js';
import { parseConfig } from '../helpers/config.js';
import type { WeirConfig } from '../../src/config/schema.js';
import { LbRuntime } from '../../src/daemon/runtime.js';
import { detachedDataPlane, type VipTables } from '../../src/dataplane/contract.js';
import { hashSeed } from '../../src/lb/flow-hash.js';
import { MODE_DSR_GRE, MODE_DSR_L2, MODE_NAT } from '../../src/lb/vip-table.js';
import { compileTables, SNAT_PORT_MAX, SNAT_PORT_MIN, tablesMessage, vipSpecOf } from '../../src/dataplane/tables.js';
import { ingressRuleset, nftTableName } from '../../src/dataplane/nft.js';
import { ringBlocksFor, tunRouteScript } from '../../src/dataplane/index.js';
import { parseIp } from '../../src/packet/index.js';
import { SlotStore } from '../../src/lb/slot-store.js';

const text = `
instance: { addresses: [198.18.1.11, fd00:0:0:1::11] }
cluster: { hash_seed: unit }
conntrack: { capacity: 1024 }
vips:
  - { name: web-nat, address: 198.18.100.1, port: 80, table_size: 251,
      backends: [{ name: a, address: 198.18.1.21 }, { name: b, address: 198.18.1.22, weight: 200 }] }
  - { name: web6-gre, address: "fd00:0:0:100::2", port: 80, mode: dsr-gre, table_size: 101,
      backends: [{ name: a, address: "fd00:0:0:1::21" }] }
  - { name: all-l2, address: 198.18.100.3, port: all, mode: dsr-l2, table_size: 101, health_check: { type: none },
      backends: [{ name: a, address: 198.18.1.21, mac: "02:00:00:00:00:21" }] }
`;

async function published(): Promise<{ vips: readonly VipTables[]; config: WeirConfig }> {
  const hooks = detachedDataPlane();
  const config = parseConfig(text);
  await LbRuntime.start(config, hooks);
  assert.equal(hooks.published.vips.length, 3);
  return { vips: hooks.published.vips, config };
}

const ctx = {
  address4: '198.18.1.11',
  address6: 'fd00:0:0:1::11',
  mtu: 9000,
  unknownTraffic: 'pass',
  fragments: 'drop',
} as const;

test('a published table set survives structured cloning and compiles, over the shared slot store, to the same VIPs, modes and Maglev slots', async () => {
  const { vips, config } = await published();
  const store = SlotStore.create();
  const descs = vips.map((v) => {
    const d = store.allocDesc();
    store.swap(d, store.write(v.table));
    return d;
  });
  const msg = structuredClone(
    tablesMessage(7, vips, ctx, hashSeed(config.cluster.hash_seed), 7, undefined, (i) => descs[i]),
  );
  assert.equal(msg.generation, 7);
  const t = compileTables(msg, SlotStore.attach(store.shared()));
  assert.equal(t.vipCount, 3);
  assert.deepEqual([...t.vipMode], [MODE_NAT, MODE_DSR_GRE, MODE_DSR_L2]);
  vips.forEach((v, i) => {
    assert.deepEqual(t.maglev[i].backendIds, v.table.backendIds);
    const slots = v.table.slots;
    assert.ok(slots.length > 100);
    for (let s = 0; s < slots.length; s++) assert.equal(t.maglev[i].lookup(s), slots[s], `${v.name} slot ${s}`);
    assert.equal(t.vipId[i], v.id);
  });
  assert.equal(t.pathMtu, 9000);
  assert.equal(t.findVip(4, parseIp('198.18.100.1')!, 0, 6, 80), 0);
  assert.equal(t.findVip(4, parseIp('198.18.100.3')!, 0, 6, 4242), 2, 'port all');
  assert.equal(t.isSnatAddress(4, parseIp('198.18.1.11')!, 0), true);
  assert.equal(t.vipSnatMin[0], SNAT_PORT_MIN);
  assert.equal(t.vipSnatMax[0], SNAT_PORT_MAX);
});

test('instance.unknown_traffic and instance.fragments reach the engine options of every published table set', async () => {
  const { vips, config } = await published();
  assert.equal(config.instance.unknown_traffic, 'pass');
  assert.equal(config.instance.fragments, 'drop');
  const dflt = tablesMessage(1, vips, ctx, 0).opts;
  assert.equal(dflt.unknownTraffic, 'pass');
  assert.equal(dflt.fragments, 'drop');
  const flipped = tablesMessage(2, vips, { ...ctx, unknownTraffic: 'drop', fragments: 'pass' }, 0).opts;
  assert.equal(flipped.unknownTraffic, 'drop');
  assert.equal(flipped.fragments, 'pass');
});

test('the SNAT port range lies below the kernel default ephemeral range (32768..60999)', () => {
  assert.ok(SNAT_PORT_MIN >= 1024 && SNAT_PORT_MIN < SNAT_PORT_MAX && SNAT_PORT_MAX < 32768);
});

test('a nat VIP without an instance address of its family is refused, naming the VIP', async () => {
  const { vips } = await published();
  assert.throws(
    () => vipSpecOf(vips[0], { ...ctx, address4: undefined, mtu: 1500, address6: 'fd00::1' }),
    /VIP web-nat: nat mode needs an IPv4 address in instance.snat_addresses or instance.addresses/,
  );
  assert.throws(
    () => tablesMessage(1, vips, { ...ctx, address6: undefined, mtu: 1500, address4: '198.18.1.11' }, 0),
    /dsr-gre to an IPv6 backend needs greSource6/,
  );
});

test('a VIP that takes all ports keeps the packet port (backend port 0)', async () => {
  const { vips } = await published();
  const spec = vipSpecOf(vips[2], ctx);
  assert.equal(spec.port, 0);
  assert.deepEqual(
    spec.backends.map((b) => b.port),
    [0],
  );
  assert.equal(spec.backends[0].mac, '02:00:00:00:00:21');
});

test('nft table names keep only letters, digits and underscores', () => {
  const cases: [string, string][] = [
    ['lb1', 'weir_lb1'],
    ['edge-1.fra', 'weir_edge_1_fra'],
    ['weir', 'weir_weir'],
  ];
  for (const [name, want] of cases) assert.equal(nftTableName(name), want);
});

test('the ingress ruleset drops VIP addresses and SNAT port ranges on every interface, replacing the old table', () => {
  const s = ingressRuleset('weir_lb1', ['fab0', 'eth1'], {
    vips: ['198.18.100.1', 'fd00:0:0:100::2'],
    snat: ['198.18.1.11', 'fd00:0:0:1::11'],
  });
  const lines = s.split('\n');
  assert.equal(lines[0], 'table netdev weir_lb1 {}');
  assert.equal(lines[1], 'delete table netdev weir_lb1');
  assert.equal(lines.filter((l) => l.includes('hook ingress')).length, 2);
  assert.ok(s.includes('device "fab0"') && s.includes('device "eth1"'));
  for (const rule of [
    'ip daddr { 198.18.100.1 } drop',
    'ip6 daddr { fd00:0:0:100::2 } drop',
    `ip daddr { 198.18.1.11 } tcp dport ${SNAT_PORT_MIN}-${SNAT_PORT_MAX} drop`,
    `ip daddr { 198.18.1.11 } udp dport ${SNAT_PORT_MIN}-${SNAT_PORT_MAX} drop`,
    `ip6 daddr { fd00:0:0:1::11 } tcp dport ${SNAT_PORT_MIN}-${SNAT_PORT_MAX} drop`,
    `ip6 daddr { fd00:0:0:1::11 } udp dport ${SNAT_PORT_MIN}-${SNAT_PORT_MAX} drop`,
  ])
    assert.equal(lines.filter((l) => l.trim() === rule).length, 2, rule);
});

test("without nat VIPs the SNAT address stays the kernel's, and a hostile interface name is refused", () => {
  const s = ingressRuleset('weir_x', ['fab0'], { vips: ['198.18.100.3'], snat: [] });
  assert.ok(!s.includes('dport'));
  assert.throws(
    () => ingressRuleset('weir_x', ['a"; flush ruleset'], { vips: [], snat: [] }),
    /cannot go into an nft rule/,
  );
});

test('io: tun refuses dsr-l2 VIPs (a TUN has no Ethernet header) and takes nat and dsr-gre', () => {
  const yamlOf = (mode: string, io: string): string =>
    `instance:\n  addresses: [198.18.3.1]\n  io: ${io}\nvips:\n  - name: web\n    address: 198.18.100.3\n    port: 80\n    mode: ${mode}\n    backends:\n      - address: 198.18.1.21\n${mode === 'dsr-l2' ? '        mac: 02:00:00:00:00:01\n' : ''}`;
  const problems = (text: string): string[] => {
    const r = parseConfigText(text);
    return r.ok ? [] : r.issues.map(formatIssue).map((m) => m.replace(/ \(line.*$/, ''));
  };
  assert.deepEqual(problems(yamlOf('dsr-l2', 'tun')), [
    'vips[0].mode: dsr-l2 needs instance.io afpacket: a TUN carries IP packets, no Ethernet header to rewrite',
  ]);
  assert.deepEqual(problems(yamlOf('dsr-l2', 'afpacket')), []);
  assert.deepEqual(problems(yamlOf('nat', 'tun')), []);
  assert.deepEqual(problems(yamlOf('dsr-gre', 'tun')), []);
  const ok = parseConfigText(yamlOf('nat', 'tun'));
  assert.ok(ok.ok && ok.config.instance.tun_name === 'weir-tun0', 'tun_name defaults to weir-tun0');
  assert.equal(problems(`instance:\n  io: tun\n  tun_name: "a/b"\n`).length, 1, 'a bad tun_name is refused');
});

test('the routes into the TUN go from the old address set to the new one: deletes first, host routes per family', () => {
  assert.deepEqual(tunRouteScript('weir-tun0', [], ['198.18.100.1', 'fd00::1']), [
    'route replace 198.18.100.1/32 dev weir-tun0',
    'route replace fd00::1/128 dev weir-tun0',
  ]);
  assert.deepEqual(tunRouteScript('weir-tun0', ['198.18.100.1', '198.18.3.1'], ['198.18.100.1', '198.18.100.2']), [
    'route del 198.18.3.1/32 dev weir-tun0',
    'route replace 198.18.100.2/32 dev weir-tun0',
  ]);
  assert.deepEqual(tunRouteScript('weir-tun0', ['198.18.100.1'], ['198.18.100.1']), [], 'nothing to do: no ip call');
});

test('AF_PACKET rings are 8 MiB per socket with one or two workers and 4 MiB with more', () => {
  assert.deepEqual(
    [1, 2, 3, 8, 64].map((n) => ringBlocksFor(n) * 256),
    [8192, 8192, 4096, 4096, 4096],
    'KiB per socket',
  );
});
