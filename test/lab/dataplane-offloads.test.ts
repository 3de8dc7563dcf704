// Receive aggregation on the interfaces weir reads: with instance.gro: off (the default) weir
// turns GRO off while it runs and puts it back when it stops; with gro: keep it leaves it alone.
// The judge is ethtool -k, read from outside weir.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
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
async function runWeir(groSetting: 'off' | 'keep', name: string): Promise<{ during: string; after: string }> {
  const file = tmp.write(`${name}.yaml`, configYaml({
    socket: tmp.file(`${name}.sock`),
    instance: { name, addresses: ['198.18.40.1'], interfaces: [IF], workers: 1, gro: groSetting },
    vips: [{ name: 'web', address: '198.18.40.100', port: 80, backends: [{ address: '198.18.40.2' }] }],
  }));
  const d = startDaemon(file, { netns: LB });
  await d.waitFor(/"msg":"ready"/);
  const during = gro();
  assert.equal(await d.stop(), 0, d.stderr);
  return { during, after: gro() };
}

test('gro: off turns GRO off on the interfaces while weir runs and restores it at stop; gro: keep leaves it', { skip }, async () => {
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
});
