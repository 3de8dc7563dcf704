// `weir top` and the rates behind it: the sampler turns two reads of the counters into per-second
// rates (a counter that went down has none), and the live view shows them per VIP and backend
// with health and connection-table use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficSampler } from '../../src/daemon/traffic.js';
import { renderTop } from '../../src/cli/top.js';
import { si } from '../../src/cli/format.js';
import { detachedDataPlane, type VipTraffic } from '../../src/dataplane/contract.js';
import type { BackendView, VipView } from '../../src/control/api.js';

function row(pin: number, flows: number): VipTraffic {
  const b = {
    name: 'a',
    packetsIn: pin,
    bytesIn: pin * 100,
    packetsOut: pin / 2,
    bytesOut: pin * 50,
    newFlows: flows,
    activeFlows: 3,
  };
  return { ...b, name: 'web', droppedIn: 0, droppedOut: 0, backends: [b] };
}

test('rates are the difference of the last two samples per second; a counter that went down has no rate', () => {
  let cur = row(1000, 10);
  const s = new TrafficSampler({ ...detachedDataPlane(), traffic: () => [cur] });
  s.sample(0);
  cur = row(3000, 30);
  s.sample(2000);
  const v = s.view(cur, 'web');
  assert.deepEqual(
    [v.packetsInPerSec, v.bitsInPerSec, v.packetsOutPerSec, v.newFlowsPerSec, v.activeFlows, v.packetsIn],
    [1000, 800000, 500, 10, 3, 3000],
  );
  assert.equal(s.view(cur.backends[0], 'web', 'a').packetsInPerSec, 1000);
  cur = row(10, 1);
  s.sample(3000);
  assert.equal(s.view(cur, 'web').packetsInPerSec, 0);
});

test('weir top shows rates, active flows, health and table use per VIP and backend', () => {
  const traffic = {
    packetsIn: 123456,
    bytesIn: 0,
    packetsOut: 0,
    bytesOut: 0,
    newFlows: 0,
    activeFlows: 4200,
    packetsInPerSec: 15300,
    bitsInPerSec: 2.5e9,
    packetsOutPerSec: 0,
    bitsOutPerSec: 0,
    newFlowsPerSec: 850,
  };
  const vip = { name: 'web', mode: 'dsr-gre', state: 'serving', activeBackends: 2, backends: 3, traffic } as VipView;
  const be = { vip: 'web', name: 'be1', health: 'up', drained: true, weight: 100, share: 0.5, traffic } as BackendView;
  const s = renderTop([vip], [be], { capacity: 1000, size: 250, byState: {}, counters: {} }, new Date(0));
  assert.match(s, /^weir top — 1970-01-01T00:00:00\.000Z\s+conntrack 250\/1000 \(25\.00%\)$/m);
  assert.match(s, /^web\s+dsr-gre\s+serving\s+2\/3\s+15\.3k\s+2\.50G\s+0\s+850\s+4\.20k\s+123k$/m);
  assert.match(s, /^web\s+be1\s+up,drained\s+100\s+50\.00%\s+15\.3k\s+2\.50G\s+0\s+850\s+4\.20k$/m);
  assert.doesNotMatch(s, /not attached/);
  const detached = renderTop([{ ...vip, traffic: undefined }], [], { capacity: 1, size: 0, byState: {}, counters: {} });
  assert.match(detached, /the data plane is not attached/);
  assert.deepEqual([0, 7.5, 999, 1000, 12345, 4.5e6].map(si), ['0', '7.5', '999', '1.00k', '12.3k', '4.50M']);
});
