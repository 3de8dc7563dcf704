// The SNAT soak (scripts/bench/snat-soak.ts) in its short form: 20 s of 20k new DNS-shaped UDP
// flows per second through a nat VIP with a pool of four SNAT addresses. Judges: the kernel's
// own counters in the client namespace (answers that came back) and the backends' echo count.
// No flow may be dropped for want of a SNAT port or a table entry; weir's fds stay flat.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { labSkipReason } from '../helpers/net.js';
import type { SoakResult } from '../../scripts/bench/snat-soak.js';

const SOAK = path.join(PACKAGE_ROOT, 'dist', 'scripts', 'bench', 'snat-soak.js');

function skipReason(): string | undefined {
  return labSkipReason() ?? (spawnSync('cc', ['--version']).status !== 0 ? 'the soak needs cc (gcc)' : undefined);
}

describe('SNAT soak, short form', { skip: skipReason() }, () => {
  test('20 s of 20k new UDP flows/s through a nat VIP: no dropSnatExhausted, every query answered', () => {
    const r = spawnSync(process.execPath, [SOAK, '--seconds', '20', '--rate', '20000', '--snat', '4', '--json'], {
      encoding: 'utf8',
      timeout: 180_000,
      maxBuffer: 1 << 24,
    });
    assert.ok(
      r.status === 0 || r.status === 1,
      `soak failed (${r.status} ${r.signal ?? ''}):\n${r.stderr.slice(-3000)}`,
    );
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SoakResult;
    const c = res.counters;
    const why = `\n${r.stderr.slice(-2000)}`;
    assert.ok(res.sent >= 300_000, `the generator sent ${res.sent} of 400000${why}`);
    assert.equal(c.dropSnatExhausted, 0, `dropSnatExhausted${why}`);
    assert.equal(c.dropConntrackFull, 0, `dropConntrackFull${why}`);
    assert.equal(c.newFlows, res.sent, `every datagram a new flow${why}`);
    assert.ok(res.answered >= res.sent * 0.99, `answered ${res.answered} of ${res.sent}${why}`);
    assert.ok(res.echoed >= res.answered, 'the backends echoed what came back');
    // Flows are really held for a while (the soak measures something) and stay below the cap.
    assert.ok(res.peakSnatInUse > 20_000 && res.peakSnatInUse < res.snatCapacity, `peak ${res.peakSnatInUse}`);
    assert.equal(res.snatCapacity, 4 * 64512);
    assert.ok(res.end.fds - res.start.fds <= 2, `fds ${res.start.fds} → ${res.end.fds}`);
    assert.equal(r.status, 0);
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(!/weir-bn-/.test(ns), `no weir-bn-* namespace left:\n${ns}`);
  });
});
