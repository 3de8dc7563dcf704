// rate_limits in the lab: a client network sending 400 new UDP flows per second for 4 s (16
// source addresses in one /24) through a nat VIP, with a limit per client /24 and then one for
// the instance. Judge: the answers the client namespace's kernel counts (every admitted flow is
// answered by the backends); the limit must hold to within 10 % of rate × seconds + burst.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { labSkipReason } from '../helpers/net.js';
import type { SoakResult } from '../../scripts/bench/snat-soak.js';

const SOAK = path.join(PACKAGE_ROOT, 'dist', 'scripts', 'bench', 'snat-soak.js');
const SECONDS = 4;
const RATE = 400;

function skipReason(): string | undefined {
  return labSkipReason() ?? (spawnSync('cc', ['--version']).status !== 0 ? 'the lab test needs cc (gcc)' : undefined);
}

function run(limit: string[]): { res: SoakResult; why: string } {
  const r = spawnSync(
    process.execPath,
    [SOAK, '--seconds', String(SECONDS), '--rate', String(RATE), '--snat', '1', '--sources', '16', ...limit, '--json'],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 24 },
  );
  assert.equal(r.status, 0, `soak failed (${r.status} ${r.signal ?? ''}):\n${r.stderr.slice(-3000)}`);
  return { res: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SoakResult, why: `\n${r.stderr.slice(-1500)}` };
}

describe('rate limits hold in the lab', { skip: skipReason() }, () => {
  test('50 new flows/s per client /24 (burst 50): about 50 × 4 + 50 flows of 1600 get through', () => {
    const { res, why } = run(['--client-limit', '50']);
    const expected = 50 * SECONDS + 50;
    assert.ok(res.sent >= RATE * SECONDS * 0.95, `sent ${res.sent}${why}`);
    assert.ok(
      Math.abs(res.answered - expected) <= expected * 0.1,
      `answered ${res.answered}, expected ${expected}${why}`,
    );
    assert.equal(res.counters.newFlows, res.echoed, `every admitted flow reached a backend${why}`);
    assert.equal(res.counters.dropRateLimitClient, res.sent - res.counters.newFlows, `the rest counted${why}`);
    assert.equal(res.counters.dropRateLimitInstance, 0);
  });

  test('100 new flows/s for the instance (burst 100): about 100 × 4 + 100 get through', () => {
    const { res, why } = run(['--instance-limit', '100']);
    const expected = 100 * SECONDS + 100;
    assert.ok(
      Math.abs(res.answered - expected) <= expected * 0.1,
      `answered ${res.answered}, expected ${expected}${why}`,
    );
    assert.equal(res.counters.dropRateLimitInstance, res.sent - res.counters.newFlows, `the rest counted${why}`);
    assert.equal(res.counters.dropRateLimitClient, 0);
  });
});
