// The short soak (scripts/soak.ts, `npm run soak` runs it for 10 minutes): 30 s of TCP and UDP to
// every web and echo VIP, v4 and v6, in every mode, while backends are reweighted by reloads and
// drained, stopped, started and undrained every 3 s. The daemons' RSS and descriptors stay
// within bounds, and every exchange is answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkipReason } from '../helpers/net.js';
import { runSoak } from '../../scripts/soak.js';

const skip = labSkipReason();

test(
  '30 s of mixed traffic while backends change keeps RSS and descriptors bounded',
  { skip, timeout: 600_000 },
  async (t) => {
    const r = await runSoak({ durationMs: 30_000, changeEveryMs: 3000, log: (l) => t.diagnostic(l) });
    assert.ok(r.changes.weights >= 1 && r.changes.stop >= 1 && r.changes.start >= 1, JSON.stringify(r.changes));
    assert.ok(r.tcp.ok >= 200 && r.udp.ok >= 100, `tcp ${r.tcp.ok}, udp ${r.udp.ok} exchanges answered`);
    assert.equal(r.start.length, 2);
    for (let i = 0; i < r.start.length; i++) {
      const [a, b] = [r.start[i], r.end[i]];
      assert.ok(b.fds - a.fds <= 4, `${a.ns}: fds ${a.fds} → ${b.fds}`);
      assert.ok(b.rssMb - a.rssMb < 80, `${a.ns}: RSS ${a.rssMb.toFixed(1)} → ${b.rssMb.toFixed(1)} MB`);
    }
    // A backend is drained before it stops and undrained only once it listens again and every
    // instance's checks pass, and each exchange is a new flow: none may fail.
    assert.deepEqual(r.failures, [], `${r.tcp.failed} TCP and ${r.udp.failed} UDP exchanges failed`);
  },
);
