// instance.io: tun end to end (one lab, `lab up --io=tun --workers=2`): the lbs' kernels route
// VIP and SNAT traffic into weir's multi-queue TUN, weir sends its output through raw sockets.
// Judged by curl and socat at the client, the client address the backends saw, conntrack, and
// tshark checksums on the lbs' fabric interfaces. The dsr-l2 VIPs are left out (no L2 in a TUN).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { inNs, labSkipReason, linkMac } from '../helpers/net.js';
import {
  assertNoBadChecksumsIntroduced,
  assertSpreadByWeight,
  Capture,
  CLIENT4,
  CLIENT6,
  conntrackRows,
  curlMany,
  labDown,
  labUp,
  LBS,
  udpEcho,
  urlOf,
  weir,
  WEIR,
} from './dataplane-lab.js';
import { VIPS } from '../../netns-lab/topology.js';
import { labTunAddress } from '../../netns-lab/weir-config.js';

const skip = labSkipReason();
const TUN = 'weir-tun0';
const web = VIPS.filter((v) => v.protocol === 'tcp' && v.port === 80 && v.mode !== 'dsr-l2');
const echo = VIPS.filter((v) => v.protocol === 'udp' && v.mode !== 'dsr-l2');

describe('io: tun forwards nat and dsr-gre VIPs end to end, IPv4 and IPv6', { skip }, () => {
  const macs: Record<string, string> = {};
  before(() => {
    labUp(['--io=tun', '--workers=2']);
    for (const ns of LBS) macs[ns] = linkMac(ns, 'fab0');
  });
  after(() => labDown());

  test('each lb runs two workers on the TUN, routes every VIP and its SNAT addresses into it, and has no nftables ingress table', () => {
    assert.equal(web.length, 4);
    for (const ns of LBS) {
      const s = weir<{ dataplane: { attached: boolean; description: string; running: number } }>(ns, ['status']);
      assert.equal(s.dataplane.attached, true, `${ns} attached`);
      assert.match(s.dataplane.description, new RegExp(`^tun: 2 workers on ${TUN} \\(2 queues`));
      assert.equal(s.dataplane.running, 2);
      const routes =
        inNs(ns, 'ip', ['route', 'show', 'dev', TUN]) + inNs(ns, 'ip', ['-6', 'route', 'show', 'dev', TUN]);
      for (const a of [
        ...new Set([...web, ...echo].map((v) => v.address)),
        labTunAddress(ns, 4),
        labTunAddress(ns, 6),
      ]) {
        assert.match(routes, new RegExp(`^${a.replace(/\./g, '\\.')} `, 'm'), `${ns} routes ${a} into ${TUN}`);
      }
      assert.doesNotMatch(inNs(ns, 'nft', ['list', 'tables']), /weir_/, `${ns} installed no nftables table`);
    }
  });

  for (const vip of web) {
    const six = vip.address.includes(':');
    test(`${vip.name}: 100 HTTP requests all succeed, spread by weight; the backend saw ${vip.mode === 'nat' ? 'the SNAT address' : 'the client'}; conntrack names the backend; no checksum made bad`, async (t) => {
      const caps = LBS.map((ns) => new Capture(ns, 'fab0'));
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
          const snat = LBS.map((ns) => labTunAddress(ns, six ? 6 : 4));
          for (const a of seen) assert.ok(snat.includes(a), `backend saw a TUN SNAT address, got ${a}`);
        } else assert.deepEqual([...seen], [six ? CLIENT6 : CLIENT4]);
        const rows = conntrackRows().filter((r) => r.vipName === vip.name);
        for (const l of lines) {
          const [backend, , port] = l.split(' ');
          const row = rows.find((r) => r.clientPort === Number(port) && r.client === (six ? CLIENT6 : CLIENT4));
          assert.ok(row, `conntrack has the flow from client port ${port}`);
          assert.equal(row.backendName, backend, `flow from port ${port}: conntrack backend`);
        }
        const arrivedBad = assertNoBadChecksumsIntroduced(caps, macs);
        if (arrivedBad > 0) t.diagnostic(`${arrivedBad} frame(s) reached a weir host with a bad checksum (not weir's)`);
        // What left the lbs: translated segments to port 80 (nat) or GRE (dsr-gre).
        const sent = caps.flatMap((c) => c.packets().filter((p) => p.ethSrc === macs[c.ns]));
        assert.ok(
          sent.some((p) => (vip.mode === 'nat' ? p.dport === 80 : p.protocols.includes(':gre:'))),
          'weir forwarded the client packets',
        );
      } finally {
        for (const c of caps) c.remove();
      }
    });
  }

  test('UDP request/response through the nat and dsr-gre echo VIPs works and is tracked', () => {
    assert.equal(echo.length, 4);
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

  test('both TUN queues of each lb received packets (the kernel spreads flows over the queues), with no send errors', () => {
    for (const ns of LBS) {
      const s = weir<{ dataplane: { workerRx: number[]; counters: Record<string, number> } }>(ns, ['status']);
      assert.equal(s.dataplane.workerRx.length, 2);
      for (const [i, rx] of s.dataplane.workerRx.entries())
        assert.ok(rx > 0, `${ns} worker ${i} received packets (${rx})`);
      assert.equal(s.dataplane.counters.txErrors, 0, `${ns} txErrors`);
      assert.equal(s.dataplane.counters.dropNoL2, 0, `${ns} dropNoL2`);
      assert.equal(s.dataplane.counters.dropGso, 0, `${ns} dropGso`);
    }
  });

  test('a second instance on the same TUN, a SNAT address the host owns, or forwarding off: weir run refuses to start, naming the cause, and leaves no device', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weir-tun-'));
    const base = YAML.parse(readFileSync('/run/weir-lab/weir-lb1.yaml', 'utf8')) as {
      instance: Record<string, unknown>;
      control: { socket: string };
      metrics: { listen: string };
    };
    base.control.socket = path.join(dir, 'x.sock');
    base.metrics.listen = '127.0.0.1:9479';
    const start = (edit: (c: typeof base) => void): { status: number | null; err: string } => {
      const c = structuredClone(base);
      edit(c);
      const file = path.join(dir, 'weir.yaml');
      writeFileSync(file, YAML.stringify(c));
      const r = spawnSync(
        'ip',
        ['netns', 'exec', 'weir-lb1', 'timeout', '20', process.execPath, WEIR, 'run', '-c', file],
        { encoding: 'utf8' },
      );
      return { status: r.status, err: r.stderr };
    };
    const noDevice = (name: string): void =>
      assert.notEqual(
        spawnSync('ip', ['netns', 'exec', 'weir-lb1', 'ip', 'link', 'show', name]).status,
        0,
        `no ${name} left`,
      );
    try {
      const dup = start(() => undefined);
      assert.equal(dup.status, 1);
      assert.match(dup.err, /instance\.tun_name weir-tun0 already exists/);
      const local = start((c) => {
        c.instance.tun_name = 'weir-tun9';
        c.instance.addresses = ['198.18.1.11', labTunAddress('weir-lb1', 6)];
      });
      assert.equal(local.status, 1);
      assert.match(local.err, /SNAT address 198\.18\.1\.11 is assigned to this host/);
      noDevice('weir-tun9');
      inNs('weir-lb1', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0']);
      try {
        const off = start((c) => {
          c.instance.tun_name = 'weir-tun9';
        });
        assert.equal(off.status, 1);
        assert.match(off.err, /needs net\.ipv6\.conf\.all\.forwarding=1/);
      } finally {
        inNs('weir-lb1', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
      }
      noDevice('weir-tun9');
      // The running instance still forwards.
      assert.match(udpEcho(VIPS.find((v) => v.name === 'echo-nat')!.address, 'still'), /^be[123] still\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
