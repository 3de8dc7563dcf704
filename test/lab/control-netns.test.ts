// Two weir instances in two network namespaces of one host, side by side: each serves its own
// control socket and state; `weir status` and `weir reload` reach each one; SIGTERM stops both.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addNs, delNs, labSkipReason } from './lab-env.js';
import { CLI, DaemonProcess, weir, weirJson } from '../unit/cli-helpers.js';

const NS = ['weir-ctl-a', 'weir-ctl-b'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-ctlns-'));
const started: DaemonProcess[] = [];

after(async () => {
  for (const d of started) d.signal('SIGKILL');
  await Promise.all(started.map((d) => d.exited));
  if (!labSkipReason()) delNs(...NS);
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, socket: string, weight: number): string {
  return `
instance: { name: ${name}, addresses: [198.18.0.10] }
cluster: { hash_seed: lab }
conntrack: { capacity: 1024 }
control: { socket: ${socket} }
metrics: { listen: false }
vips:
  - { name: web, address: 198.18.100.1, port: 80, table_size: 251, health_check: { type: none }, backends: [{ name: b1, address: 198.18.1.1 }, { name: b2, address: 198.18.1.2, weight: ${weight} }] }
`;
}

test('two instances in two namespaces run side by side with separate sockets and state', { skip: labSkipReason() }, async () => {
  const ds: { d: DaemonProcess; socket: string; file: string }[] = [];
  for (const [i, ns] of NS.entries()) {
    addNs(ns);
    const socket = path.join(dir, `${ns}.sock`);
    const file = path.join(dir, `${ns}.yaml`);
    writeFileSync(file, config(ns, socket, 100 * (i + 1)));
    // `ip netns exec` execs node, so the child PID is the daemon's.
    const d = new DaemonProcess(spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
    started.push(d);
    ds.push({ d, socket, file });
  }
  await Promise.all(ds.map(({ d }) => d.waitFor(/"msg":"ready"/)));
  const [a, b] = ds.map(({ socket }) => weirJson<{ instance: string; vips: { fingerprint: string }[] }>('status', '-s', socket));
  assert.deepEqual([a.instance, b.instance], NS);
  assert.notEqual(a.vips[0].fingerprint, b.vips[0].fingerprint, 'different weights give different tables');
  // Reload one instance: the other is untouched.
  writeFileSync(ds[0].file, config(NS[0], ds[0].socket, 200));
  assert.equal(weir('reload', '-s', ds[0].socket).status, 0);
  const a2 = weirJson<{ vips: { fingerprint: string }[] }>('status', '-s', ds[0].socket);
  const b2 = weirJson<{ generation: number; vips: { fingerprint: string }[] }>('status', '-s', ds[1].socket);
  assert.equal(a2.vips[0].fingerprint, b.vips[0].fingerprint, 'same config, same table in both namespaces');
  assert.equal(b2.generation, 1);
  for (const { d } of ds) d.signal('SIGTERM');
  assert.deepEqual(await Promise.all(ds.map(({ d }) => d.exited)), [0, 0]);
});
