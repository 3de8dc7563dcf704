// After setup a running weir keeps only the capabilities it needs (instance.drop_privileges,
// src/daemon/privileges.ts): the kernel's view of the daemon (/proc/PID/status and every thread's)
// is the judge. A reload that adds a VIP still rewrites the nftables ingress drops and traffic
// still flows, and a stop still removes them (both need CAP_NET_ADMIN, which it keeps).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { labSkipReason } from '../helpers/net.js';
import { until } from '../helpers/wait.js';
import { curlMany, labDown, labStatus, labUp, urlOf, weir } from './dataplane-lab.js';
import { loadConfigFile } from '../../src/config/load.js';
import { runtimeCapabilities } from '../../src/daemon/privileges.js';
import { nftTableName } from '../../src/dataplane/nft.js';

const skip = labSkipReason();

function field(status: string, name: string): bigint {
  const m = new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(status);
  assert.ok(m, `${name} in status`);
  return BigInt(`0x${m[1]}`);
}

function mask(caps: number[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(c)), 0n);
}

function nftRules(ns: string, instance: string): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'netdev', nftTableName(instance)], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stdout : '';
}

describe('a running weir keeps only the capabilities it needs', { skip }, () => {
  before(() => labUp());
  after(() => labDown());

  test('every thread of each daemon holds exactly its runtime capabilities, bounding set included', () => {
    const instances = labStatus().weir;
    assert.ok(instances.length > 0);
    for (const w of instances) {
      const cfg = loadConfigFile(w.config);
      assert.equal(cfg.instance.drop_privileges, true, 'the default');
      const want = mask(runtimeCapabilities(cfg));
      const pid = weir<{ pid: number }>(w.ns, ['status']).pid;
      const main = readFileSync(`/proc/${pid}/status`, 'utf8');
      assert.equal(field(main, 'CapEff').toString(16), want.toString(16), `${w.ns} CapEff`);
      assert.equal(field(main, 'CapPrm').toString(16), want.toString(16), `${w.ns} CapPrm`);
      assert.equal(field(main, 'CapBnd').toString(16), want.toString(16), `${w.ns} CapBnd`);
      assert.equal(field(main, 'CapAmb'), 0n);
      assert.equal(field(main, 'CapInh'), 0n);
      // Capabilities are per thread: each one (workers, the BFD thread, the libuv pool) was reduced,
      // but for Node's SIGUSR1 watchdog, which blocks every signal and runs no weir code.
      const tids = readdirSync(`/proc/${pid}/task`);
      const full = tids.filter((t) => field(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'), 'CapEff') !== want);
      assert.ok(tids.length > 4, `${tids.length} threads`);
      assert.ok(full.length <= 1, `${w.ns}: threads ${full.join(', ')} keep other capabilities`);
    }
  });

  test('a reload that adds a VIP still installs its ingress drop, traffic flows, and a stop removes the table', async () => {
    const instances = labStatus().weir;
    const extra = '198.18.100.77';
    for (const w of instances) {
      const doc = YAML.parse(readFileSync(w.config, 'utf8')) as { vips: Record<string, unknown>[] };
      const first = doc.vips.find((v) => v.mode === 'nat' || v.mode === undefined);
      assert.ok(first, 'a nat VIP to copy');
      doc.vips.push({ ...first, name: 'web-extra', address: extra });
      writeFileSync(w.config, YAML.stringify(doc));
      const r = weir<{ ok: boolean; diff: { vipsAdded: string[] } }>(w.ns, ['reload']);
      assert.deepEqual([r.ok, r.diff.vipsAdded], [true, ['web-extra']]);
      const instance = loadConfigFile(w.config).instance.name;
      await until(`${w.ns}: the ingress drops name ${extra}`, () => nftRules(w.ns, instance).includes(extra));
    }
    const s = labStatus();
    const nat = s.vips.find((v) => v.mode === 'nat' && v.protocol === 'tcp' && !v.address.includes(':'));
    assert.ok(nat);
    const r = curlMany(urlOf(nat.address, nat.port), 40, 10);
    assert.equal(r.failures, 0, 'traffic through a nat VIP after the reload');
    const w = instances[0];
    const instance = loadConfigFile(w.config).instance.name;
    assert.notEqual(nftRules(w.ns, instance), '');
    const pid = weir<{ pid: number }>(w.ns, ['status']).pid;
    process.kill(pid, 'SIGTERM');
    await until(`${w.ns} stopped`, () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(nftRules(w.ns, instance), '', 'the stopping daemon removed its nftables table');
  });
});
