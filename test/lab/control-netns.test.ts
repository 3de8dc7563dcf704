// Two weir instances in two network namespaces of one host, side by side: each serves its own
// control socket and state; `weir status` and `weir reload` reach each one; SIGTERM stops both.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { configYaml } from '../helpers/config.js';
import { startDaemon, stopDaemons, weir, weirJson, type DaemonProcess } from '../helpers/daemon.js';
import { addNs, delNs, labSkipReason } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

const NS = ['weir-ctl-a', 'weir-ctl-b'];
const tmp = tempDir('ctlns');

after(async () => {
  await stopDaemons();
  if (!labSkipReason()) delNs(...NS);
});

function config(name: string, socket: string, weight: number): string {
  return configYaml({
    socket,
    instance: { name },
    cluster: { hash_seed: 'lab' },
    vips: [
      {
        name: 'web',
        address: '198.18.100.1',
        port: 80,
        backends: [
          { name: 'b1', address: '198.18.1.1' },
          { name: 'b2', address: '198.18.1.2', weight },
        ],
      },
    ],
  });
}

test(
  'two instances in two namespaces run side by side with separate sockets and state',
  { skip: labSkipReason() },
  async () => {
    const ds: { d: DaemonProcess; socket: string; file: string }[] = [];
    for (const [i, ns] of NS.entries()) {
      addNs(ns);
      const socket = tmp.file(`${ns}.sock`);
      const file = tmp.write(`${ns}.yaml`, config(ns, socket, 100 * (i + 1)));
      ds.push({ d: startDaemon(file, { netns: ns }), socket, file });
    }
    await Promise.all(ds.map(({ d }) => d.waitFor(/"msg":"ready"/)));
    const [a, b] = ds.map(({ socket }) =>
      weirJson<{ instance: string; vips: { fingerprint: string }[] }>('status', '-s', socket),
    );
    assert.deepEqual([a.instance, b.instance], NS);
    assert.notEqual(a.vips[0].fingerprint, b.vips[0].fingerprint, 'different weights give different tables');
    // Reload one instance: the other is untouched.
    writeFileSync(ds[0].file, config(NS[0], ds[0].socket, 200));
    assert.equal(weir('reload', '-s', ds[0].socket).status, 0);
    const a2 = weirJson<{ vips: { fingerprint: string }[] }>('status', '-s', ds[0].socket);
    const b2 = weirJson<{ generation: number; vips: { fingerprint: string }[] }>('status', '-s', ds[1].socket);
    assert.equal(a2.vips[0].fingerprint, b.vips[0].fingerprint, 'same config, same table in both namespaces');
    assert.equal(b2.generation, 1);
    assert.deepEqual(await Promise.all(ds.map(({ d }) => d.stop())), [0, 0]);
  },
);
