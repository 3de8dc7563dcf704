// The lab builds its network, reports it, serves from every backend over v4 and v6, and
// leaves nothing behind after `down`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { labSkipReason, inNs } from '../helpers/net.js';
import { PACKAGE_ROOT } from '../../src/version.js';
import { BRIDGE_NF_SYSCTLS, type LabStatus } from '../../netns-lab/lab.js';
import { SWITCH_NS } from '../../netns-lab/topology.js';

const skip = labSkipReason();
const lab = path.join(PACKAGE_ROOT, 'netns-lab', 'lab');

function weirNamespaces(): string[] {
  return (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => /^weir-(client|router|fabric|lb\d|be\d)$/.test(n));
}

after(() => {
  if (!skip) spawnSync(lab, ['down']);
});

test('lab up builds every namespace and status --json describes them', { skip }, () => {
  execFileSync(lab, ['up'], { encoding: 'utf8' });
  const s = JSON.parse(execFileSync(lab, ['status', '--json'], { encoding: 'utf8' })) as LabStatus;
  assert.equal(s.up, true);
  assert.ok(s.namespaces.length >= 8);
  for (const n of s.namespaces) assert.equal(n.present, true, `${n.ns} present`);
  assert.equal(s.backends.length, 3);
  for (const b of s.backends) {
    assert.deepEqual(
      b.servers.map((p) => p.what).filter((w) => w !== 'weir-decap'),
      ['http+udp-echo', 'iperf3'],
      `${b.name} runs http+udp and iperf3`,
    );
    for (const p of b.servers) assert.equal(p.alive, true, `${b.name} ${p.what} alive`);
  }
  assert.ok(s.vips.some((v) => v.mode === 'dsr-gre') && s.vips.some((v) => v.address.includes(':')));
  // br_netfilter (where the kernel has it) does not see the lab's bridged frames.
  let checked = 0;
  for (const key of BRIDGE_NF_SYSCTLS) {
    const r = spawnSync('ip', ['netns', 'exec', SWITCH_NS, 'sysctl', '-n', key], { encoding: 'utf8' });
    if (r.status !== 0) continue; // this kernel has no such switch
    assert.equal(r.stdout.trim(), '0', `${key} in ${SWITCH_NS}`);
    checked++;
  }
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) assert.equal(checked, BRIDGE_NF_SYSCTLS.length);
});

test('every backend answers HTTP from the client over IPv4 and IPv6 with its own name', { skip }, () => {
  const s = JSON.parse(execFileSync(lab, ['status', '--json'], { encoding: 'utf8' })) as LabStatus;
  for (const b of s.backends) {
    assert.equal(
      inNs('weir-client', 'curl', ['-s', '--max-time', '3', `http://${b.v4}/`]).trim(),
      `${b.name} 198.18.0.2`,
    );
    assert.equal(
      inNs('weir-client', 'curl', ['-s', '--max-time', '3', `http://[${b.v6}]/`]).trim(),
      `${b.name} fd00::2`,
    );
  }
});

test('the UDP echo server prefixes its name', { skip }, () => {
  const out = execFileSync('ip', ['netns', 'exec', 'weir-client', 'timeout', '3', 'socat', '-', 'UDP:198.18.1.22:7'], {
    input: 'ping\n',
    encoding: 'utf8',
  });
  assert.equal(out, 'be2 ping\n');
});

test('lab up twice is idempotent and lab down removes every lab namespace and server', { skip }, () => {
  execFileSync(lab, ['up']);
  const s = JSON.parse(execFileSync(lab, ['status', '--json'], { encoding: 'utf8' })) as LabStatus;
  const pids = [
    ...s.backends.flatMap((b) => b.servers.map((p) => p.pid)),
    ...s.weir.map((w) => w.pid).filter((p): p is number => p !== null),
  ];
  assert.ok(pids.length >= 8, 'backend servers and weir instances are running');
  execFileSync(lab, ['down']);
  assert.deepEqual(weirNamespaces(), []);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), `server ${pid} is gone`);
});
