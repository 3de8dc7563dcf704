// The short soak (scripts/soak.ts, `npm run soak` runs it for 10 minutes): 30 s of TCP and UDP to
// every web and echo VIP, v4 and v6, in every mode, while backends are reweighted by reloads and
// drained, stopped, started and undrained every 3 s. The daemons' RSS and descriptors stay
// within bounds, and the traffic goes through.
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
    // A drained backend takes no new flows, so none should fail; the rare failures seen around a
    // backend's restart (docs in the soak report) are held to a small share rather than zero.
    const total = r.tcp.ok + r.tcp.failed + r.udp.ok + r.udp.failed;
    const failed = r.tcp.failed + r.udp.failed;
    assert.ok(
      failed <= Math.max(3, total * 0.05),
      `${failed} of ${total} exchanges failed: ${JSON.stringify(r.failures)}`,
    );
  },
);
