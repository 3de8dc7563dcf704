// What weir changes on its host while it runs, judged from outside weir: receive aggregation on
// its interfaces (instance.gro: off, the default, turns GRO off and puts it back at stop; keep
// leaves it; ethtool -k), and the scheduling policy of its worker threads only
// (instance.worker_scheduling; /proc/PID/task/*/stat).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { configYaml } from '../helpers/config.js';
import { startDaemon, stopDaemons } from '../helpers/daemon.js';
import { addNs, addVethPair, delNs, inNs, labSkipReason } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

const skip = labSkipReason();
const LB = 'weir-off-lb';
const PEER = 'weir-off-cl';
const IF = 'weir-off-a';
const tmp = tempDir('offloads');

after(async () => {
  await stopDaemons();
  if (!skip) delNs(LB, PEER);
});

/** generic-receive-offload of IF as ethtool reports it. */
function gro(): 'on' | 'off' {
  const m = /^generic-receive-offload: (on|off)/m.exec(inNs(LB, 'ethtool', ['-k', IF]));
  assert.ok(m, 'ethtool -k lists generic-receive-offload');
  return m[1] as 'on' | 'off';
}

/** Runs weir on IF with instance.gro set; GRO while it ran and after it stopped. */
async function runWeir(
  groSetting: 'off' | 'keep',
  name: string,
  extra: Record<string, unknown> = {},
  during: (pid: number) => void = () => {},
): Promise<{ during: string; after: string }> {
  const file = tmp.write(
    `${name}.yaml`,
    configYaml({
      socket: tmp.file(`${name}.sock`),
      instance: { name, addresses: ['198.18.40.1'], interfaces: [IF], workers: 2, gro: groSetting, ...extra },
      vips: [{ name: 'web', address: '198.18.40.100', port: 80, backends: [{ address: '198.18.40.2' }] }],
    }),
  );
  const d = startDaemon(file, { netns: LB });
  await d.waitFor(/"msg":"ready"/);
  const groDuring = gro();
  during(d.child.pid!);
  assert.equal(await d.stop(), 0, d.stderr);
  return { during: groDuring, after: gro() };
}

/** Scheduling policy (field 41 of /proc/PID/task/TID/stat: 0 other, 1 fifo, 2 rr) and priority of each thread. */
function threadPolicies(pid: number): { policy: number; rtPriority: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 on
    return { policy: Number(f[41 - 3]), rtPriority: Number(f[40 - 3]) };
  });
}

test(
  'gro: off turns GRO off on the interfaces while weir runs and restores it at stop; gro: keep leaves it',
  { skip },
  async () => {
    addNs(LB);
    addNs(PEER);
    addVethPair(LB, IF, PEER, 'weir-off-b', { addrA: '198.18.40.1/24', addrB: '198.18.40.2/24' });
    inNs(LB, 'ethtool', ['-K', IF, 'gro', 'on']);
    assert.equal(gro(), 'on');
    assert.deepEqual(await runWeir('off', 'gro-off'), { during: 'off', after: 'on' });
    assert.deepEqual(await runWeir('keep', 'gro-keep'), { during: 'on', after: 'on' });
    // Already off: weir changes nothing and leaves it off.
    inNs(LB, 'ethtool', ['-K', IF, 'gro', 'off']);
    assert.deepEqual(await runWeir('off', 'gro-was-off'), { during: 'off', after: 'off' });
  },
);

test(
  'worker_scheduling: fifo puts the two worker threads, and only them, on SCHED_FIFO at the priority given',
  { skip },
  async () => {
    let seen: { policy: number; rtPriority: number }[] = [];
    await runWeir(
      'keep',
      'sched',
      { worker_scheduling: { policy: 'fifo', priority: 7 } },
      (pid) => (seen = threadPolicies(pid)),
    );
    assert.ok(seen.length > 3, `the daemon has threads (${seen.length})`);
    assert.deepEqual(
      seen.filter((t) => t.policy !== 0),
      [
        { policy: 1, rtPriority: 7 },
        { policy: 1, rtPriority: 7 },
      ],
    );
  },
);
