// The end-to-end checks every forwarding mode goes through in the lab (one lab per test file):
// HTTP over IPv4 and IPv6 through both weir instances (ECMP), spread by weight, the client
// address the backend saw, conntrack entries naming the backend that answered, UDP echo,
// tshark-validated checksums on both sides, no RST/ICMP from the weir hosts' own kernels, and
// in DSR modes no reply leaving a weir host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inNs, labSkipReason, linkMac } from '../helpers/net.js';
import {
  assertNoBadChecksumsIntroduced,
  assertSpreadByWeight,
  Capture,
  CLIENT,
  CLIENT4,
  CLIENT6,
  conntrackRows,
  curlMany,
  dpCounters,
  kernelAnswers,
  labDown,
  labUp,
  LB_ADDR,
  LBS,
  udpEcho,
  urlOf,
  type Pkt,
} from './dataplane-lab.js';
import { VIPS } from '../../netns-lab/topology.js';

type Mode = 'nat' | 'dsr-l2' | 'dsr-gre';

export function modeSuite(mode: Mode): void {
  const skip = labSkipReason();
  const web = VIPS.filter((v) => v.mode === mode && v.protocol === 'tcp' && v.port === 80);
  const echo = VIPS.filter((v) => v.mode === mode && v.protocol === 'udp');
  const macs: Record<string, string> = {};

  describe(`weir forwards ${mode} VIPs end to end`, { skip }, () => {
    before(() => {
      labUp();
      for (const ns of LBS) macs[ns] = linkMac(ns, 'fab0');
    });
    after(() => labDown());

    test('the lab has one HTTP and one UDP VIP of this mode per address family', () => {
      assert.equal(web.length, 2);
      assert.equal(echo.length, 2);
    });

    for (const fam of [4, 6] as const) {
      const vip = web.find((v) => v.address.includes(':') === (fam === 6))!;
      test(`IPv${fam}: 200 HTTP requests to ${vip.name} all succeed, spread by weight, and conntrack names the backend that answered`, async (t) => {
        const caps = [new Capture(CLIENT, 'front0'), ...LBS.map((ns) => new Capture(ns, 'fab0'))];
        const kernelBefore = LBS.map(kernelAnswers);
        try {
          await Promise.all(caps.map((c) => c.ready()));
          const { lines, failures } = curlMany(urlOf(vip.address), 200, 20);
          assert.equal(failures, 0, `all 200 requests answered (${failures} failed)`);
          assertSpreadByWeight(lines, vip.name);

          // The client address the backend saw: weir's SNAT address in nat, the real client in DSR.
          const seen = new Set(lines.map((l) => l.split(' ')[1]));
          const lbAddrs = LBS.map((ns) => (fam === 4 ? LB_ADDR[ns].v4 : LB_ADDR[ns].v6));
          if (mode === 'nat')
            for (const a of seen) assert.ok(lbAddrs.includes(a), `backend saw the SNAT address, got ${a}`);
          else assert.deepEqual([...seen], [fam === 4 ? CLIENT4 : CLIENT6]);

          // Every connection is in one instance's table (ECMP picked which), with the backend that answered.
          const rows = conntrackRows().filter((r) => r.vipName === vip.name);
          for (const l of lines) {
            const [backend, , port] = l.split(' ');
            const row = rows.find((r) => r.clientPort === Number(port) && r.client === (fam === 4 ? CLIENT4 : CLIENT6));
            assert.ok(row, `conntrack has the flow from client port ${port}`);
            assert.equal(row.backendName, backend, `flow from port ${port}: conntrack backend`);
            assert.equal(row.proto, 'tcp');
            if (mode === 'nat')
              assert.ok(
                row.snat && lbAddrs.includes(row.snat.addr),
                `nat flow has a SNAT address: ${JSON.stringify(row.snat)}`,
              );
          }
        } finally {
          await Promise.all(caps.map((c) => c.stop()));
        }
        try {
          const arrivedBad = assertNoBadChecksumsIntroduced(
            caps.slice(1),
            macs,
            mode === 'nat' ? { capture: caps[0], mac: linkMac(CLIENT, 'front0') } : undefined,
          );
          if (arrivedBad > 0)
            t.diagnostic(
              `${arrivedBad} frame(s) reached a weir host with a bad checksum (not weir's; forwarded as they were)`,
            );
          const fromVip = (p: Pkt): boolean => p.src === vip.address && p.sport === 80;
          assert.ok(caps[0].packets().some(fromVip), 'the client got replies from the VIP');
          // Frames the weir hosts sent (their MAC as source).
          const fromLbs = LBS.map((ns, i) => ({
            ns,
            sent: caps[i + 1].packets().filter((p) => p.ethSrc === macs[ns]),
          }));
          const repliesViaWeir = fromLbs.reduce((s, x) => s + x.sent.filter(fromVip).length, 0);
          const forwarded = fromLbs.reduce(
            (s, x) =>
              s +
              x.sent.filter((p) =>
                mode === 'nat'
                  ? p.dport === 80
                  : mode === 'dsr-gre'
                    ? p.protocols.includes(':gre:')
                    : p.dst === vip.address,
              ).length,
            0,
          );
          assert.ok(forwarded > 0, 'weir forwarded the client packets');
          if (mode === 'nat') assert.ok(repliesViaWeir > 0, 'nat replies come back through weir');
          else assert.equal(repliesViaWeir, 0, 'DSR replies never leave a weir host');
          // No RST and no ICMP error from a weir host: the kernel kept off VIP and NAT traffic.
          for (const x of fromLbs) {
            const own = fam === 4 ? LB_ADDR[x.ns].v4 : LB_ADDR[x.ns].v6;
            assert.equal(
              x.sent.filter((p) => p.icmpType === 3 || p.icmp6Type === 1).length,
              0,
              `${x.ns} sent no ICMP unreachable`,
            );
            if (mode !== 'nat')
              assert.equal(x.sent.filter((p) => p.src === own && p.rst).length, 0, `${x.ns} sent no RST`);
          }
          LBS.forEach((ns, i) => {
            const k = kernelAnswers(ns);
            assert.deepEqual(
              k,
              kernelBefore[i],
              `${ns}'s kernel sent no RST or unreachable (TcpOutRsts, Icmp(6)OutDestUnreachs)`,
            );
          });
        } finally {
          for (const c of caps) c.remove();
        }
      });
    }

    for (const vip of echo) {
      test(`UDP request/response through ${vip.name} (${vip.address}) works and is tracked`, () => {
        const answers = [0, 1, 2, 3, 4].map((i) => udpEcho(vip.address, `ping${i}`));
        for (const [i, a] of answers.entries()) assert.match(a, new RegExp(`^be[123] ping${i}\\n$`), `answer ${i}`);
        const rows = conntrackRows().filter((r) => r.vipName === vip.name && r.proto === 'udp');
        assert.ok(rows.length >= 1, 'UDP flows in conntrack');
        for (const r of rows) assert.match(r.backendName ?? '', /^be[123]$/);
      });
    }

    test('weir status shows the attached data plane and its counters, and the nftables ingress table is in place', () => {
      let rx = 0;
      for (const ns of LBS) {
        const nft = inNs(ns, 'nft', ['list', 'table', 'netdev', `weir_${ns.replace(/^weir-/, '')}`]);
        assert.match(nft, /hook ingress device "fab0"/);
        for (const v of [...web, ...echo])
          assert.ok(
            nft.includes(`${v.address.includes(':') ? 'ip6' : 'ip'} daddr ${v.address} drop`) ||
              nft.includes(v.address),
            `${ns} drops ${v.address}`,
          );
        const c = dpCounters(ns);
        rx += c.rx;
        assert.equal(c.dropChecksum, 0, `${ns} dropChecksum`);
        assert.equal(c.txErrors, 0, `${ns} txErrors`);
        assert.equal(c.dropGso, 0, `${ns} dropGso (offloads are off in the lab)`);
      }
      assert.ok(rx > 0, 'the workers received packets');
    });
  });
}
