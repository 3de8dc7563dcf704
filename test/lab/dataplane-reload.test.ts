// weir in the lab over time (two workers per instance): a long-lived TCP connection keeps its backend while a reload
// changes its weight and removes another backend; iperf3 for 10 s through nat and dsr-l2;
// SIGTERM detaches the data plane and removes the nftables table.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { labSkipReason, inNs } from '../helpers/net.js';
import {
  CLIENT,
  conntrackRows,
  curlMany,
  dpCounters,
  keepAlive,
  labDown,
  labStatus,
  labUp,
  LBS,
  urlOf,
  weir,
} from './dataplane-lab.js';

const skip = labSkipReason();

interface VipYaml {
  name: string;
  backends: { name: string; weight: number }[];
}

/** Rewrites every lab instance's config with `edit` applied to one VIP, then `weir reload`s each. */
function reloadAll(vipName: string, edit: (v: VipYaml) => void): void {
  for (const w of labStatus().weir) {
    const doc = YAML.parse(readFileSync(w.config, 'utf8')) as { vips: VipYaml[] };
    const v = doc.vips.find((x) => x.name === vipName);
    assert.ok(v, `${vipName} in ${w.config}`);
    edit(v);
    writeFileSync(w.config, YAML.stringify(doc));
    const r = weir<{ ok: boolean; generation: number }>(w.ns, ['reload']);
    assert.equal(r.ok, true, `${w.ns} reloaded`);
  }
}

describe('weir keeps connections across reloads and carries bulk traffic (two workers per instance)', { skip }, () => {
  before(() => labUp(['--workers=2']));
  after(() => labDown());

  for (const vip of [
    { name: 'web-nat', address: '198.18.100.1' },
    { name: 'web-l2', address: '198.18.100.3' },
  ]) {
    test(`a long-lived TCP connection to ${vip.name} keeps its backend while a reload reweights it and removes another backend`, async () => {
      const run = keepAlive(urlOf(vip.address), 40);
      const first = await run.first;
      const [, port, backend] = first.split(' ');
      const other = ['be1', 'be2', 'be3'].find((b) => b !== backend)!;
      reloadAll(vip.name, (v) => {
        v.backends = v.backends.filter((b) => b.name !== other);
        for (const b of v.backends) if (b.name === backend) b.weight = 300;
      });
      await run.done;
      assert.equal(run.lines.length, 40, 'every request on the connection was answered');
      for (const l of run.lines) assert.equal(l, `W ${port} ${backend} 200`, 'same connection, same backend, HTTP 200');
      // New connections avoid the removed backend; its flows left the connection table.
      const fresh = curlMany(urlOf(vip.address), 40, 10);
      assert.equal(fresh.failures, 0);
      assert.ok(!fresh.lines.some((l) => l.startsWith(`${other} `)), `no new connection reaches the removed ${other}`);
      assert.ok(
        !conntrackRows().some((r) => r.vipName === vip.name && r.backendName === other),
        `no ${vip.name} flow left on ${other}`,
      );
    });
  }

  for (const vip of [
    { name: 'iperf-nat', address: '198.18.100.1' },
    { name: 'iperf-l2', address: '198.18.100.3' },
  ]) {
    test(`iperf3 runs 10 s through ${vip.name} without errors or GSO drops`, (t) => {
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          CLIENT,
          'timeout',
          '40',
          'iperf3',
          '-c',
          vip.address,
          '-p',
          '5201',
          '-t',
          '10',
          '-J',
          '--connect-timeout',
          '3000',
        ],
        { encoding: 'utf8', maxBuffer: 1 << 24 },
      );
      const j = JSON.parse(r.stdout) as {
        error?: string;
        end?: { sum_received?: { bits_per_second: number; bytes: number }; sum_sent?: { retransmits?: number } };
      };
      assert.equal(j.error, undefined, `iperf3: ${j.error}`);
      const got = j.end?.sum_received;
      assert.ok(got && got.bytes > 0, 'data arrived');
      t.diagnostic(
        `${vip.name}: ${(got.bits_per_second / 1e9).toFixed(2)} Gbit/s, ${j.end?.sum_sent?.retransmits ?? '?'} retransmits`,
      );
      for (const ns of LBS) assert.equal(dpCounters(ns).dropGso, 0, `${ns} dropGso`);
    });
  }

  test('both workers of each instance received packets (the fanout hash spreads flows, conntrack is shared)', () => {
    for (const ns of LBS) {
      const s = weir<{ dataplane: { workers: number; running: number; workerRx: number[] } }>(ns, ['status']);
      assert.equal(s.dataplane.workers, 2);
      assert.equal(s.dataplane.running, 2);
      assert.equal(s.dataplane.workerRx.length, 2);
      for (const [i, rx] of s.dataplane.workerRx.entries()) assert.ok(rx > 0, `${ns} worker ${i} received packets`);
    }
  });

  test('SIGTERM stops weir: workers exit, the nftables table goes, the daemon logs a clean stop and exits', async () => {
    const w = labStatus().weir.find((x) => x.ns === 'weir-lb2')!;
    assert.ok(w.pid && w.alive);
    assert.match(inNs(w.ns, 'nft', ['list', 'table', 'netdev', 'weir_lb2']), /drop/);
    process.kill(w.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (labStatus().weir.find((x) => x.ns === 'weir-lb2')!.alive && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(labStatus().weir.find((x) => x.ns === 'weir-lb2')!.alive, false, 'weir exited');
    const log = readFileSync(w.log, 'utf8');
    for (const msg of ['data plane detached', 'nftables ingress drops removed', '"msg":"stopped"'])
      assert.ok(log.includes(msg), `log says ${msg}`);
    assert.notEqual(
      spawnSync('ip', ['netns', 'exec', w.ns, 'nft', 'list', 'table', 'netdev', 'weir_lb2']).status,
      0,
      'table removed',
    );
  });
});
