// weir's BGP speaker against a second, independent implementation: GoBGP (gobgpd from Debian)
// in weir-bgp-g, the speaker child in weir-bgp-gs. `gobgp neighbor` / `gobgp global rib` judge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { labSkipReason, delNs } from '../helpers/net.js';
import { startGobgpd, SpeakerChild, maybeWriteFixture, vethPair, waitUntil } from './bgp-lab.js';
import { decodeMessage } from '../../src/bgp/message.js';

const G = 'weir-bgp-g';
const S = 'weir-bgp-gs';
const G4 = '198.18.101.1';
const S4 = '198.18.101.2';
const G6 = 'fd00:18:101::1';
const S6 = 'fd00:18:101::2';
const LOCAL_AS = 4200000001;
const ROUTER_AS = 65000;
const VIP4 = '198.18.251.1/32';
const VIP6 = 'fd00:251::1/128';
const API = ['-u', '127.0.0.1', '-p', '50051'];

const skip =
  labSkipReason() ?? (spawnSync('gobgpd', ['--version']).status === 0 ? undefined : 'gobgpd is not installed');

let dir = '';
let gobgpd: ChildProcess | undefined;
let speaker: SpeakerChild | undefined;

function gobgp(...args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', G, 'gobgp', ...API, ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout ?? '';
}

interface RibPath {
  nlri: { prefix: string };
  attrs: {
    type: number;
    value?: unknown;
    nexthop?: string;
    metric?: number;
    communities?: number[];
    as_paths?: { asns: number[] }[];
  }[];
  'neighbor-ip'?: string;
}

function ribPath(prefix: string, family: 'ipv4' | 'ipv6'): RibPath | undefined {
  try {
    const rib = JSON.parse(gobgp('global', 'rib', '-a', family, '-j') || '{}') as Record<string, RibPath[]>;
    return rib[prefix]?.[0];
  } catch {
    return undefined;
  }
}

function neighborState(): string {
  try {
    const n = JSON.parse(gobgp('neighbor', S4, '-j') || '{}') as { state?: { session_state?: number | string } };
    return String(n.state?.session_state ?? '');
  } catch {
    return '';
  }
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'weir-bgp-gobgp-'));
  vethPair({ ns: G, dev: 'weir-bgp-gv', v4: G4, v6: G6 }, { ns: S, dev: 'weir-bgp-gsv', v4: S4, v6: S6 });
  gobgpd = startGobgpd(G, dir, { as: ROUTER_AS, routerId: G4, peer: S4, peerAs: LOCAL_AS });
  await waitUntil(() => gobgp('global').includes('AS'), 5000, 'gobgpd did not start');
  // Routes GoBGP exports to us, so the speaker validates real GoBGP UPDATEs.
  gobgp('global', 'rib', 'add', '198.18.202.0/24', '-a', 'ipv4');
  gobgp('global', 'rib', 'add', 'fd00:202::/64', '-a', 'ipv6');
  speaker = new SpeakerChild(S, {
    localAs: LOCAL_AS,
    peerAs: ROUTER_AS,
    routerId: S4,
    peerAddress: G4,
    holdTime: 3,
    nextHop6: S6,
    connectRetryMinMs: 300,
    connectRetryMaxMs: 2000,
  });
});

after(async () => {
  if (speaker) {
    speaker.proc.kill('SIGKILL');
    await speaker.exit();
  }
  if (gobgpd && gobgpd.exitCode === null) {
    gobgpd.kill('SIGTERM'); // ip netns exec execs gobgpd: this pid is gobgpd's
    await new Promise((r) => {
      const t = setTimeout(() => {
        gobgpd!.kill('SIGKILL');
        r(undefined);
      }, 2000);
      gobgpd!.on('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
  }
  delNs(G, S);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the speaker establishes a session with GoBGP', { skip }, async () => {
  await speaker!.waitEvent((e) => e.ev === 'state' && e.state === 'Established', 10_000);
  await waitUntil(
    () => /^(6|ESTABLISHED|established)$/.test(neighborState()),
    5000,
    `GoBGP does not show the session established (${neighborState()})`,
  );
});

test(
  'GoBGP learns the /32 and /128 VIPs with our next hop, AS path, MED, communities and large communities',
  { skip },
  async () => {
    speaker!.announce(VIP4, { med: 50, communities: ['65000:100'], largeCommunities: ['4200000001:1:2'] });
    speaker!.announce(VIP6, { med: 60, communities: ['65000:101'] });
    await waitUntil(
      () => ribPath(VIP4, 'ipv4') !== undefined && ribPath(VIP6, 'ipv6') !== undefined,
      5000,
      'GoBGP did not learn both VIPs',
    );
    const p4 = ribPath(VIP4, 'ipv4')!;
    const attr = (p: RibPath, t: number) => p.attrs.find((a) => a.type === t);
    assert.equal(attr(p4, 1)?.value, 0); // ORIGIN IGP
    assert.deepEqual(attr(p4, 2)?.as_paths?.[0].asns, [LOCAL_AS]);
    assert.equal(attr(p4, 3)?.nexthop, S4);
    assert.equal(attr(p4, 4)?.metric, 50);
    assert.deepEqual(attr(p4, 8)?.communities, [65000 * 65536 + 100]);
    assert.deepEqual(attr(p4, 32)?.value, [{ ASN: LOCAL_AS, LocalData1: 1, LocalData2: 2 }]);
    const p6 = ribPath(VIP6, 'ipv6')!;
    const mp = attr(p6, 14) as { nexthop?: string; value?: unknown } | undefined;
    assert.ok(mp, 'the IPv6 path has MP_REACH_NLRI');
    assert.equal(mp.nexthop, S6);
    assert.equal(attr(p6, 4)?.metric, 60);
  },
);

test(
  'every message GoBGP sent decodes and validates (and is saved as a golden fixture on request)',
  { skip },
  async () => {
    const rx = (pred: (hex: string, type: string) => boolean) =>
      speaker!.waitEvent((e) => e.ev === 'rx' && pred(e.hex!, e.type!), 5000);
    const open = await rx((_, t) => t === 'open');
    const v4 = await rx((h, t) => t === 'update' && h.includes('18c612ca')); // NLRI 198.18.202.0/24
    const v6 = await rx((h, t) => t === 'update' && h.includes('40fd000202')); // NLRI fd00:202::/64
    for (const e of [open, v4, v6])
      assert.equal(
        decodeMessage(Uint8Array.from(Buffer.from(e.hex!, 'hex')), { fourOctetAs: e.type !== 'open' }).ok,
        true,
        e.type,
      );
    const src = `GoBGP 3.10.0 (gobgpd, AS ${ROUTER_AS}, router id ${G4}, hold time 3) to weir's speaker (AS ${LOCAL_AS}) in test/lab/bgp-gobgp.test.ts`;
    maybeWriteFixture('gobgp-open', `OPEN sent by ${src}`, 'open', open.hex!);
    maybeWriteFixture(
      'gobgp-update-ipv4',
      `IPv4 UPDATE (198.18.202.0/24, ORIGIN incomplete, from \`gobgp global rib add\`) sent by ${src}; 4-octet AS negotiated`,
      'update as4',
      v4.hex!,
    );
    maybeWriteFixture(
      'gobgp-update-ipv6',
      `IPv6 MP_REACH UPDATE (fd00:202::/64, IPv4-mapped next hop) sent by ${src}; 4-octet AS negotiated`,
      'update as4',
      v6.hex!,
    );
  },
);

test('GoBGP sees the withdrawals of both VIPs and the session stays up', { skip }, async () => {
  speaker!.withdraw(VIP4);
  speaker!.withdraw(VIP6);
  await waitUntil(
    () => ribPath(VIP4, 'ipv4') === undefined && ribPath(VIP6, 'ipv6') === undefined,
    5000,
    'GoBGP still has a withdrawn VIP',
  );
  assert.match(neighborState(), /^(6|ESTABLISHED|established)$/);
});

test(
  'a graceful shutdown leaves GoBGP with Cease / Administrative Shutdown and no routes from us',
  { skip },
  async () => {
    speaker!.announce(VIP4, { med: 10 });
    await waitUntil(() => ribPath(VIP4, 'ipv4') !== undefined, 5000, 'GoBGP did not learn the VIP');
    const from = speaker!.events.length;
    speaker!.send({ op: 'shutdown', graceful: true, waitMs: 200 });
    await speaker!.waitEvent((e) => e.ev === 'stopped', 5000);
    await waitUntil(() => ribPath(VIP4, 'ipv4') === undefined, 1000, 'GoBGP still has the VIP after the shutdown');
    await waitUntil(
      () => !/^(6|ESTABLISHED|established)$/.test(neighborState()),
      2000,
      'GoBGP still shows the session up',
    );
    // The session ended with our NOTIFICATION: Cease (6) / Administrative Shutdown (2), RFC 4486 §3.
    const down = speaker!.events
      .slice(from)
      .filter((e) => e.ev === 'down')
      .at(-1);
    assert.deepEqual(down?.info?.sent, { code: 6, subcode: 2 }, 'the speaker sent Cease / Administrative Shutdown');
  },
);
