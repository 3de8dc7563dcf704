// A two-armed weir host end to end (`lab up --two-armed --workers=2`): clients reach weir on the
// uplink (fab0), backends sit on another segment (be0). Every mode, IPv4 and IPv6, must send its
// output on the right side: nat to the backends out of be0 and the replies to the client out of
// fab0, dsr-gre out of be0, dsr-l2 frames out of be0 (the backend's segment, not the one the
// packet came in on), and no DSR reply through weir. Judged by curl at the client, the client
// address the backends saw, conntrack, and tshark on both interfaces of each weir host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipReason, linkMac } from '../helpers/net.js';
import {
  assertNoBadChecksumsIntroduced,
  assertSpreadByWeight,
  Capture,
  CLIENT4,
  CLIENT6,
  conntrackRows,
  curlMany,
  dpCounters,
  labDown,
  labUp,
  LBS,
  udpEcho,
  urlOf,
  weir,
  type Pkt,
} from './dataplane-lab.js';
import { VIPS } from '../../netns-lab/topology.js';
import type { LabStatus } from '../../netns-lab/lab.js';

const skip = labSkipReason();
const web = VIPS.filter((v) => v.protocol === 'tcp' && v.port === 80);
const echo = VIPS.filter((v) => v.protocol === 'udp');

describe('a two-armed weir host forwards every mode out of the right interface, IPv4 and IPv6', { skip }, () => {
  let lab: LabStatus;
  /** MAC of each lb interface, by "ns/ifname". */
  const macs: Record<string, string> = {};
  const backendMacs = new Set<string>();
  before(() => {
    lab = labUp(['--two-armed', '--workers=2']);
    for (const ns of LBS) for (const dev of ['fab0', 'be0']) macs[`${ns}/${dev}`] = linkMac(ns, dev);
    for (const b of lab.backends) backendMacs.add(linkMac(b.ns, 'fab0'));
  });
  after(() => labDown());

  test('the lab is two-armed and each instance runs two workers on both interfaces', () => {
    assert.equal(lab.shape, 'two-armed');
    assert.equal(web.length, 6);
    for (const w of lab.weir) {
      assert.deepEqual(w.interfaces, ['fab0', 'be0']);
      assert.match(w.snat4, /^198\.18\.2\./, 'SNAT source on the backend side');
      const s = weir<{ dataplane: { attached: boolean; description: string; running: number } }>(w.ns, ['status']);
      assert.equal(s.dataplane.attached, true);
      assert.match(s.dataplane.description, /^afpacket: 2 workers on fab0, be0 /);
      assert.equal(s.dataplane.running, 2);
    }
    for (const b of lab.backends) assert.match(b.v4, /^198\.18\.2\./, `${b.name} is on the backend segment`);
  });

  for (const vip of web) {
    const six = vip.address.includes(':');
    test(`${vip.name} (${vip.mode}): 100 HTTP requests succeed, spread by weight; client-side and backend-side traffic leave on their own interfaces`, async (t) => {
      const caps = LBS.flatMap((ns) => ['fab0', 'be0'].map((dev) => new Capture(ns, dev)));
      let lines: string[];
      try {
        await Promise.all(caps.map((c) => c.ready()));
        const r = curlMany(urlOf(vip.address), 100, 10);
        lines = r.lines;
        assert.equal(r.failures, 0, `all 100 requests answered (${r.failures} failed)`);
      } finally {
        await Promise.all(caps.map((c) => c.stop()));
      }
      try {
        assertSpreadByWeight(lines, vip.name);
        const seen = new Set(lines.map((l) => l.split(' ')[1]));
        if (vip.mode === 'nat') {
          const snat = lab.weir.map((w) => (six ? w.snat6 : w.snat4));
          for (const a of seen) assert.ok(snat.includes(a), `backend saw a backend-side SNAT address, got ${a}`);
        } else assert.deepEqual([...seen], [six ? CLIENT6 : CLIENT4]);
        const rows = conntrackRows().filter((r) => r.vipName === vip.name);
        for (const l of lines) {
          const [backend, , port] = l.split(' ');
          const row = rows.find((r) => r.clientPort === Number(port) && r.client === (six ? CLIENT6 : CLIENT4));
          assert.ok(row, `conntrack has the flow from client port ${port}`);
          assert.equal(row.backendName, backend, `flow from port ${port}: conntrack backend`);
        }

        const sentOn = (ns: string, dev: string): Pkt[] =>
          caps
            .find((c) => c.ns === ns && c.dev === dev)!
            .packets()
            .filter((p) => p.ethSrc === macs[`${ns}/${dev}`]);
        const toBackend = (p: Pkt): boolean =>
          vip.mode === 'nat'
            ? p.dport === 80
            : vip.mode === 'dsr-gre'
              ? p.protocols.includes(':gre:')
              : p.dst === vip.address && p.dport === 80;
        const toClient = (p: Pkt): boolean => p.src === vip.address && p.sport === 80;
        let backendSide = 0;
        for (const ns of LBS) {
          const up = sentOn(ns, 'fab0'),
            be = sentOn(ns, 'be0');
          backendSide += be.filter(toBackend).length;
          assert.equal(up.filter(toBackend).length, 0, `${ns}: nothing for the backends left on the uplink`);
          assert.equal(be.filter(toClient).length, 0, `${ns}: nothing for the client left on the backend side`);
          if (vip.mode === 'dsr-l2') {
            for (const p of be.filter(toBackend))
              assert.ok(backendMacs.has(p.ethDst), `${ns}: dsr-l2 frame addressed to a backend MAC (${p.ethDst})`);
          }
        }
        assert.ok(backendSide > 0, 'weir forwarded the client packets to the backends out of be0');
        const repliesViaWeir = LBS.reduce((n, ns) => n + sentOn(ns, 'fab0').filter(toClient).length, 0);
        if (vip.mode === 'nat') assert.ok(repliesViaWeir > 0, 'nat replies go back to the client out of fab0');
        else assert.equal(repliesViaWeir, 0, 'DSR replies never pass through weir');
        let arrivedBad = 0;
        for (const dev of ['fab0', 'be0']) {
          const byNs = caps.filter((c) => c.dev === dev);
          arrivedBad += assertNoBadChecksumsIntroduced(
            byNs,
            Object.fromEntries(byNs.map((c) => [c.ns, macs[`${c.ns}/${dev}`]])),
          );
        }
        if (arrivedBad > 0) t.diagnostic(`${arrivedBad} frame(s) reached a weir host with a bad checksum (not weir's)`);
      } finally {
        for (const c of caps) c.remove();
      }
    });
  }

  test('UDP request/response through every echo VIP works and is tracked', () => {
    assert.equal(echo.length, 6);
    for (const vip of echo) {
      const answers = [0, 1, 2].map((i) => udpEcho(vip.address, `ping${i}`));
      for (const [i, a] of answers.entries())
        assert.match(a, new RegExp(`^be[123] ping${i}\\n$`), `${vip.name} answer ${i}`);
      assert.ok(
        conntrackRows().some((r) => r.vipName === vip.name && r.proto === 'udp'),
        `${vip.name} flows in conntrack`,
      );
    }
  });

  test("both workers received packets, nat and GRE went out as frames to the backends' next hops, and nothing was refused, lost or left unsent", () => {
    for (const ns of LBS) {
      const s = weir<{ dataplane: { workerRx: number[] } }>(ns, ['status']);
      for (const [i, rx] of s.dataplane.workerRx.entries())
        assert.ok(rx > 0, `${ns} worker ${i} received packets (${rx})`);
      const c = dpCounters(ns);
      for (const k of ['txErrors', 'txUnsent', 'dropNoL2', 'dropGso', 'ringDrops', 'tableErrors'])
        assert.equal(c[k], 0, `${ns} ${k}`);
      // Next-hop output: once the host resolved the backends' MACs, nat and GRE left as frames on be0.
      assert.ok(
        c.txNextHop > 0 && c.txNextHop <= c.txNat + c.txGre + c.txIcmpToBackend,
        `${ns} txNextHop ${c.txNextHop} of ${c.txNat + c.txGre} nat and GRE packets`,
      );
    }
  });
});
