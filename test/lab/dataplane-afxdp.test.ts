// instance.io: afxdp end to end (one lab, `lab up --io=afxdp --workers=2`: every veth has two
// queues, each worker serves one). An XDP program on each lb's fabric interface sends VIP and SNAT
// traffic to the workers' AF_XDP sockets and leaves the rest to the kernel; there is no nftables
// guard. Judged by curl and socat at the client, the client address the backends saw, conntrack,
// tshark checksums and the lbs' kernel counters (no RST or unreachable of their own). Captures
// run on the switch ports facing the lbs: AF_XDP sends bypass the lbs' own packet taps.
// MTU 9000 on the lab links: frames span two buffers (XDP frags).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inNs, labSkipReason, linkMac } from '../helpers/net.js';
import {
  assertNoBadChecksumsIntroduced,
  assertSpreadByWeight,
  Capture,
  CLIENT4,
  CLIENT6,
  conntrackRows,
  curlMany,
  dpCounters,
  kernelAnswers,
  labDown,
  labStatus,
  labUp,
  LB_ADDR,
  LBS,
  udpEcho,
  urlOf,
  weir,
} from './dataplane-lab.js';
import { SWITCH_NS, VIPS } from '../../netns-lab/topology.js';

const skip = labSkipReason();
const web = VIPS.filter((v) => v.protocol === 'tcp' && v.port === 80);
const echo = VIPS.filter((v) => v.protocol === 'udp');

describe('io: afxdp forwards every mode end to end, IPv4 and IPv6', { skip }, () => {
  const macs: Record<string, string> = {};
  before(() => {
    labUp(['--io=afxdp', '--workers=2']);
    for (const ns of LBS) macs[ns] = linkMac(ns, 'fab0');
  });
  after(() => labDown());

  test('each lb runs two workers on the two queues of fab0, an XDP program is attached, and there is no nftables table', () => {
    for (const ns of LBS) {
      const s = weir<{ dataplane: { attached: boolean; description: string; running: number } }>(ns, ['status']);
      assert.equal(s.dataplane.attached, true, `${ns} attached`);
      assert.match(s.dataplane.description, /^afxdp: 2 workers on fab0 \(2 queues\) \(xdp native, mtu 9000\)/);
      assert.equal(s.dataplane.running, 2);
      assert.match(inNs(ns, 'ip', ['-d', 'link', 'show', 'dev', 'fab0']), /prog\/xdp/, `${ns} has the XDP program`);
      assert.doesNotMatch(inNs(ns, 'nft', ['list', 'tables']), /weir_/, `${ns} installed no nftables table`);
    }
  });

  for (const vip of web) {
    const six = vip.address.includes(':');
    test(`${vip.name} (${vip.mode}): 100 HTTP requests succeed, spread by weight; the right client address at the backend; conntrack names the backend; no checksum made bad; the lbs' kernels stayed silent`, async (t) => {
      const caps = LBS.map((ns) => new Capture(SWITCH_NS, `p-${ns.replace(/^weir-/, '')}`));
      const kernelBefore = LBS.map(kernelAnswers);
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
          const snat = LBS.map((ns) => (six ? LB_ADDR[ns].v6 : LB_ADDR[ns].v4));
          for (const a of seen) assert.ok(snat.includes(a), `backend saw a SNAT address, got ${a}`);
        } else assert.deepEqual([...seen], [six ? CLIENT6 : CLIENT4]);
        const rows = conntrackRows().filter((r) => r.vipName === vip.name);
        for (const l of lines) {
          const [backend, , port] = l.split(' ');
          const row = rows.find((r) => r.clientPort === Number(port) && r.client === (six ? CLIENT6 : CLIENT4));
          assert.ok(row, `conntrack has the flow from client port ${port}`);
          assert.equal(row.backendName, backend, `flow from port ${port}: conntrack backend`);
        }
        // One capture at a time: both run in the switch namespace.
        const arrivedBad = LBS.reduce(
          (n, ns, i) => n + assertNoBadChecksumsIntroduced([caps[i]], { [SWITCH_NS]: macs[ns] }),
          0,
        );
        if (arrivedBad > 0) t.diagnostic(`${arrivedBad} frame(s) reached a weir host with a bad checksum (not weir's)`);
        const sent = LBS.flatMap((ns, i) => caps[i].packets().filter((p) => p.ethSrc === macs[ns]));
        const forwarded = sent.filter((p) =>
          vip.mode === 'nat'
            ? p.dport === 80
            : vip.mode === 'dsr-gre'
              ? p.protocols.includes(':gre:')
              : p.dst === vip.address && p.dport === 80,
        );
        assert.ok(forwarded.length > 0, 'weir forwarded the client packets');
        const replies = sent.filter((p) => p.src === vip.address && p.sport === 80).length;
        if (vip.mode === 'nat') assert.ok(replies > 0, 'nat replies come back through weir');
        else assert.equal(replies, 0, 'DSR replies never pass through weir');
        LBS.forEach((ns, i) =>
          assert.deepEqual(kernelAnswers(ns), kernelBefore[i], `${ns}'s kernel sent no RST or unreachable`),
        );
      } finally {
        for (const c of caps) c.remove();
      }
    });
  }

  test('UDP request/response through every echo VIP works and is tracked', () => {
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

  test("the lbs' own traffic still reaches their kernels (ping, the control socket), and nothing was dropped, refused or left unsent", () => {
    for (const ns of LBS) {
      const ping = inNs('weir-client', 'ping', ['-c', '1', '-W', '2', LB_ADDR[ns].v4]);
      assert.match(ping, /1 received/, `${ns} answers ping itself`);
      const c = dpCounters(ns);
      for (const k of ['txErrors', 'txUnsent', 'ringDrops', 'dropMalformed', 'dropTruncated', 'tableErrors'])
        assert.equal(c[k], 0, `${ns} ${k}`);
    }
  });

  test("SIGTERM stops weir and detaches the XDP program: the interface is the kernel's again", async () => {
    const w = labStatus().weir.find((x) => x.ns === 'weir-lb2')!;
    assert.ok(w.pid && w.alive);
    process.kill(w.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (labStatus().weir.find((x) => x.ns === 'weir-lb2')!.alive && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(labStatus().weir.find((x) => x.ns === 'weir-lb2')!.alive, false, 'weir exited');
    assert.ok(readFileSync(w.log, 'utf8').includes('"msg":"stopped"'), 'a clean stop');
    assert.doesNotMatch(inNs(w.ns, 'ip', ['-d', 'link', 'show', 'dev', 'fab0']), /prog\/xdp/, 'no XDP program left');
  });
});
