// `weir decap` end to end, judged by the kernel's TCP stack at both ends: curl in a client
// namespace reaches an HTTP server on a VIP in a backend namespace through a test-only GRE
// encapsulator in an lb namespace; the backend decapsulates in userspace (no kernel GRE here)
// and answers the client directly. Also: crafted bad GRE is dropped and counted by reason,
// tshark finds no bad checksum at the backend, and no reply passes through the lb.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addNs, delNs, inNs, labSkipReason, sh } from '../helpers/net.js';
import { tsharkRows } from '../helpers/tshark.js';
import { startCapture } from './io-net.js';
import { buildPacket, encapGre, GRE_ROUTING, GreTunnel, parseIp } from '../../src/packet/index.js';
import { PacketBatch, RawIpSender, withNetns } from '../../src/io/index.js';

const skip = labSkipReason();
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const NS_C = 'weir-dc-client';
const NS_L = 'weir-dc-lb';
const NS_B = 'weir-dc-be';
const TUN = 'weir-dc-tun0';
// client <-> lb: .50 / fd00:50::; lb <-> backend: .51 / fd00:51::; backend <-> client: .52 / fd00:52::
const LINKS = [
  { a: NS_C, ifA: 'weir-dc-c0', b: NS_L, ifB: 'weir-dc-l0', net4: '198.18.50', net6: 'fd00:50:', mtu: 1500 },
  { a: NS_L, ifA: 'weir-dc-l1', b: NS_B, ifB: 'weir-dc-b0', net4: '198.18.51', net6: 'fd00:51:', mtu: 9000 },
  { a: NS_C, ifA: 'weir-dc-c1', b: NS_B, ifB: 'weir-dc-b1', net4: '198.18.52', net6: 'fd00:52:', mtu: 1500 },
];
const CLIENT4 = '198.18.50.1';
const CLIENT6 = 'fd00:50::1';
const LB4 = '198.18.51.1';
const LB6 = 'fd00:51::1';
const BE4 = '198.18.51.2';
const BE6 = 'fd00:51::2';
// VIP -> outer family the encapsulator uses, so every inner/outer combination is exercised.
const VIPS: Array<{ vip: string; outer: 4 | 6 }> = [
  { vip: '198.18.150.1', outer: 4 },
  { vip: '198.18.150.2', outer: 6 },
  { vip: 'fd00:150::1', outer: 4 },
  { vip: 'fd00:150::2', outer: 6 },
];
const OTHER_VIP = '198.18.150.9'; // encapsulated by nobody, refused by decap

/** Crafted GRE the backend must refuse, each sent BAD_EACH times from the lb. */
const BAD_EACH = 3;
const BAD: Array<{
  what: string;
  counter: string;
  mutate?: (b: Uint8Array, gre: number) => void;
  keyed?: boolean;
  innerDst?: string;
}> = [
  {
    what: 'routing present (RFC 2784 §2.3)',
    counter: 'drop_gre_flags',
    mutate: (b, g) => {
      b[g] |= GRE_ROUTING >>> 8;
    },
  },
  {
    what: 'version 1 (PPTP enhanced GRE)',
    counter: 'drop_gre_version',
    mutate: (b, g) => {
      b[g + 1] |= 1;
    },
  },
  { what: 'a key the backend does not expect (RFC 2890)', counter: 'drop_key_mismatch', keyed: true },
  {
    what: 'protocol 0x6558 (Ethernet bridging)',
    counter: 'drop_gre_proto',
    mutate: (b, g) => {
      b[g + 2] = 0x65;
      b[g + 3] = 0x58;
    },
  },
  { what: 'an inner destination that is no VIP here', counter: 'drop_inner_dst', innerDst: OTHER_VIP },
];

const children: ChildProcess[] = [];

/** Starts `ip netns exec ns node file args` and resolves with it once stdout has `readyText`. */
async function startNode(
  ns: string,
  file: string,
  args: string[],
  readyText: string,
): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  if (readyText === '') return { child, out: () => out + err };
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${file} not ready in 10 s: ${out} ${err}`)), 10_000);
    const check = (): void => {
      if (out.includes(readyText)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${file} exited (${code}): ${out} ${err}`));
    });
  });
  return { child, out: () => out + err };
}

/** Sends SIGTERM and resolves with everything the child printed once it has exited. */
async function stopNode(h: { child: ChildProcess; out: () => string }): Promise<string> {
  if (h.child.exitCode !== null) return h.out();
  const done = new Promise<void>((resolve) => h.child.on('exit', () => resolve()));
  h.child.kill('SIGTERM');
  await done;
  return h.out();
}

function curl(url: string): string {
  return inNs(NS_C, 'curl', ['-sS', '--max-time', '5', '-g', url]);
}

/** Packet counters of the commented rules of an nftables table, by comment. */
function nftCounters(ns: string, family: string, table: string): Record<string, number> {
  const j = JSON.parse(inNs(ns, 'nft', ['-j', 'list', 'table', family, table])) as {
    nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }>;
  };
  const out: Record<string, number> = {};
  for (const item of j.nftables) {
    const r = item.rule;
    if (!r?.comment) continue;
    const c = r.expr.find((e) => e.counter)?.counter;
    if (c) out[r.comment] = c.packets;
  }
  return out;
}

function nftLb(): string {
  return `
table netdev weir-dc-in {
  chain ingress { type filter hook ingress device "weir-dc-l0" priority 0;
    ip daddr 198.18.150.0/24 counter drop comment "vip4"
    ip6 daddr fd00:150::/64 counter drop comment "vip6"
  }
}
table inet weir-dc {
  chain pre { type filter hook prerouting priority 0;
    ip saddr 198.18.150.0/24 counter comment "reply4"
    ip6 saddr fd00:150::/64 counter comment "reply6"
  }
}
`;
}

describe('weir decap', { skip }, () => {
  let dir = '';
  let decap: { child: ChildProcess; out: () => string } | undefined;
  let encap: { child: ChildProcess; out: () => string } | undefined;
  let capIn: { done: Promise<number> } | undefined;
  let capOut: { done: Promise<number> } | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'weir-decap-'));
    for (const ns of [NS_C, NS_L, NS_B]) addNs(ns);
    buildLinks();
    const r = spawnSync('ip', ['netns', 'exec', NS_L, 'nft', '-f', '-'], { input: nftLb(), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nft: ${r.stderr}`);
    await startNode(NS_B, path.join(root, 'dist/netns-lab/backend-server.js'), ['be', '80', '7'], '');
    const tunnels: Record<string, { src: string; dst: string }> = {};
    for (const v of VIPS) tunnels[v.vip] = v.outer === 4 ? { src: LB4, dst: BE4 } : { src: LB6, dst: BE6 };
    encap = await startNode(
      NS_L,
      path.join(here, 'decap-encap-child.js'),
      [JSON.stringify({ ifname: 'weir-dc-l0', tunnels })],
      'ready',
    );
    const vipArgs = VIPS.flatMap((v) => ['--vip', v.vip]);
    decap = await startNode(
      NS_B,
      path.join(root, 'dist/src/cli/main.js'),
      ['decap', '--tun', TUN, ...vipArgs, '--setup', '--stats-interval', '0'],
      'decap started',
    );
    // The server listens once `ss` shows it (it prints nothing).
    for (let i = 0; i < 50 && !inNs(NS_B, 'ss', ['-ltnH', 'sport = :80']).includes(':80'); i++)
      await new Promise((r) => setTimeout(r, 100));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    delNs(NS_C, NS_L, NS_B);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('curl reaches every VIP (IPv4 and IPv6 inner, IPv4 and IPv6 outer) and the backend sees the real client address', async () => {
    assert.equal(VIPS.length, 4);
    capIn = await startCapture(NS_B, 'weir-dc-b0', 'ip proto 47 or ip6 proto 47', 10_000, path.join(dir, 'in.pcap'), 6);
    capOut = await startCapture(NS_B, 'weir-dc-b1', 'tcp', 10_000, path.join(dir, 'out.pcap'), 6);
    for (const v of VIPS) {
      const url = v.vip.includes(':') ? `http://[${v.vip}]/` : `http://${v.vip}/`;
      assert.equal(curl(url), `be ${v.vip.includes(':') ? CLIENT6 : CLIENT4}\n`, `${url} over IPv${v.outer} GRE`);
    }
  });

  test('GRE with an unsupported flag, version, key or protocol, or to a VIP not served, is dropped and counted by reason', () => {
    assert.ok(BAD.length > 0);
    const tun = new GreTunnel(parseIp(LB4)!, parseIp(BE4)!);
    const keyed = new GreTunnel(parseIp(LB4)!, parseIp(BE4)!, { key: 7 });
    const batch = new PacketBatch({ slots: BAD.length * BAD_EACH });
    let k = 0;
    for (const bad of BAD) {
      for (let i = 0; i < BAD_EACH; i++) {
        const inner = buildPacket({
          src: CLIENT4,
          dst: bad.innerDst ?? VIPS[0].vip,
          proto: 'udp',
          srcPort: 40000 + i,
          dstPort: 9,
          payload: 16,
        });
        const o = k * batch.slotSize;
        const len = encapGre(batch.data, o, o + batch.slotSize, inner, 0, inner.length, bad.keyed ? keyed : tun);
        assert.ok(len > 0);
        bad.mutate?.(batch.data, o + 20); // the GRE header follows the 20-byte outer IPv4 header
        batch.setPacket(k++, 0, len);
      }
    }
    const tx = withNetns(NS_L, () => new RawIpSender(4));
    try {
      assert.equal(tx.send(batch, k), k);
    } finally {
      tx.close();
    }
  });

  test('decap counters match what the encapsulator sent and no reply from a VIP passed through the lb', async () => {
    await new Promise((r) => setTimeout(r, 300)); // let the last packets drain
    const lbSeen = nftCounters(NS_L, 'inet', 'weir-dc');
    const lbIn = nftCounters(NS_L, 'netdev', 'weir-dc-in');
    const enc = JSON.parse((await stopNode(encap!)).trim().split('\n').pop()!) as Record<string, number>;
    const log = (await stopNode(decap!)).split('\n').filter((l) => l.includes('"decap stopped"'));
    assert.equal(log.length, 1, 'one "decap stopped" log line');
    const c = (JSON.parse(log[0]) as { counters: Record<string, number> }).counters;
    assert.equal(enc.sendErrors, 0);
    assert.ok(enc.encapsulated4 > 0 && enc.encapsulated6 > 0, 'both outer families were used');
    assert.equal(
      c.decapsulated,
      enc.encapsulated4 + enc.encapsulated6,
      'every packet the lb encapsulated was decapsulated',
    );
    assert.equal(c.tun_written, c.decapsulated);
    assert.equal(c.outer_ipv4, enc.encapsulated4);
    assert.equal(c.outer_ipv6, enc.encapsulated6);
    assert.ok(c.inner_ipv4 > 0 && c.inner_ipv6 > 0);
    assert.equal(c.inner_ipv4 + c.inner_ipv6, c.decapsulated);
    assert.equal(c.received, c.decapsulated + BAD.length * BAD_EACH);
    for (const bad of BAD) assert.equal(c[bad.counter], BAD_EACH, `${bad.what}: ${bad.counter}`);
    const drops = Object.entries(c)
      .filter(([name]) => name.startsWith('drop_'))
      .reduce((s, [, v]) => s + v, 0);
    assert.equal(drops, BAD.length * BAD_EACH, 'no other drops');
    assert.ok(
      lbIn.vip4 > 0 && lbIn.vip6 > 0,
      'the requests did pass the lb (and its kernel dropped them after the encapsulator saw them)',
    );
    assert.equal(lbSeen.reply4, 0, 'no IPv4 packet from a VIP reached the lb');
    assert.equal(lbSeen.reply6, 0, 'no IPv6 packet from a VIP reached the lb');
  });

  test('tshark finds no bad IP, TCP or UDP checksum in the GRE the backend received or the replies it sent', async () => {
    await capIn!.done;
    await capOut!.done;
    const gre = tsharkRows(path.join(dir, 'in.pcap'), [
      'ip.version',
      'ipv6.nxt',
      'gre.proto',
      'ip.checksum.status',
      'tcp.checksum.status',
      'udp.checksum.status',
    ]);
    const replies = tsharkRows(path.join(dir, 'out.pcap'), [
      'ip.src',
      'ipv6.src',
      'ip.checksum.status',
      'tcp.checksum.status',
    ]);
    assert.ok(gre.length >= 4 * 6, `GRE packets captured (${gre.length})`);
    assert.ok(replies.length >= 4 * 3, `replies captured (${replies.length})`);
    assert.ok(gre.some((r) => r[2] === '0x0800') && gre.some((r) => r[2] === '0x86dd'), 'IPv4 and IPv6 inner');
    assert.ok(
      gre.some((r) => r[1] === '47'),
      'IPv6 outer',
    );
    // Wireshark checksum status: 0 bad, 1 good, 2 unverified.
    for (const r of [...gre, ...replies])
      for (const st of r.slice(r.length === 6 ? 3 : 2))
        assert.ok(!st.split(',').includes('0'), `bad checksum: ${r.join('|')}`);
    assert.ok(
      replies.every((r) => r[3] === '1'),
      'every reply has a verified-good TCP checksum',
    );
    const innerTcp = gre.filter((r) => r[4] !== '');
    assert.ok(
      innerTcp.length >= 4 * 6 && innerTcp.every((r) => r[4] === '1'),
      'every inner TCP checksum in the GRE is verified good',
    );
    const sources = new Set(replies.map((r) => r[0] || r[1]));
    assert.deepEqual([...sources].sort(), VIPS.map((v) => v.vip).sort(), 'replies come from the VIPs');
  });
});

function buildLinks(): void {
  for (const l of LINKS) {
    sh('ip', [
      'link',
      'add',
      l.ifA,
      'netns',
      l.a,
      'mtu',
      String(l.mtu),
      'type',
      'veth',
      'peer',
      'name',
      l.ifB,
      'netns',
      l.b,
      'mtu',
      String(l.mtu),
    ]);
    const ends: Array<[string, string, number]> = [
      [l.a, l.ifA, 1],
      [l.b, l.ifB, 2],
    ];
    for (const [ns, dev, host] of ends) {
      inNs(ns, 'ip', ['addr', 'add', `${l.net4}.${host}/24`, 'dev', dev]);
      inNs(ns, 'ip', ['-6', 'addr', 'add', `${l.net6}:${host}/64`, 'dev', dev, 'nodad']);
      // Full checksums on the wire (no veth offload), so tshark at the backend judges real values.
      inNs(ns, 'ethtool', ['-K', dev, 'tx', 'off']);
      inNs(ns, 'ip', ['link', 'set', dev, 'up']);
    }
  }
  // Client: the VIPs via the lb. Backend: the client's network straight back over its own link.
  inNs(NS_C, 'ip', ['route', 'add', '198.18.150.0/24', 'via', '198.18.50.2']);
  inNs(NS_C, 'ip', ['-6', 'route', 'add', 'fd00:150::/64', 'via', 'fd00:50::2']);
  inNs(NS_B, 'ip', ['route', 'add', '198.18.50.0/24', 'via', '198.18.52.1']);
  inNs(NS_B, 'ip', ['-6', 'route', 'add', 'fd00:50::/64', 'via', 'fd00:52::1']);
}
