// `weir conntrack list` over a large table in bounded memory: a daemon (control harness, fake
// data plane) holding 100,000 connections answers full listings page by page. The daemon's RSS
// is read from /proc before and after each. What stays is a page; what grows is garbage the
// JS heap collects when it decides to (tens of MB), not the listing: holding it whole, as the
// daemon did before, took the RSS from 137 to 795 MB here. Memory is measured, not time; the
// figures go to the test's diagnostics.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { configYaml } from '../helpers/config.js';
import { CLI, startDaemon, stopDaemons } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import type { FlowSpec } from '../helpers/control-harness.js';

const tmp = tempDir('ctmem');
after(stopDaemons);

const FLOWS = 100_000;

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** Runs `weir ARGS` with stdout counted, not kept; resolves with the exit code and the line count. */
function weirCount(args: string[]): Promise<{ code: number | null; lines: number; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => {
      for (const x of b) if (x === 10) lines++;
    });
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('close', (code) => resolve({ code, lines, stderr }));
  });
}

test(
  'full conntrack listings of 100,000 connections keep the daemon RSS within 160 MB of where it was',
  { timeout: 300_000 },
  async (t) => {
    const socket = tmp.file('mem.sock');
    const configFile = tmp.file('mem.yaml');
    writeFileSync(
      configFile,
      configYaml({
        socket,
        conntrack: { capacity: 262144 },
        vips: [
          {
            name: 'web',
            address: '198.18.100.1',
            port: 80,
            backends: [
              { name: 'a', address: '198.18.1.1' },
              { name: 'b', address: '198.18.1.2' },
            ],
          },
        ],
      }),
    );
    const flows: FlowSpec[] = Array.from({ length: FLOWS }, (_, i) => ({
      vip: 'web',
      client: `198.19.${(i >> 8) & 255}.${i & 255}`,
      clientPort: 10000 + (i >> 16),
    }));
    const flowsFile = tmp.file('flows.json');
    writeFileSync(flowsFile, JSON.stringify(flows));
    const d = startDaemon(configFile, { flowsFile });
    await d.waitFor(/"msg":"ready"/, 60_000);
    const pid = d.child.pid!;
    const S = ['-s', socket];
    const first = await weirCount(['conntrack', 'list', '--limit', '10', ...S]);
    assert.equal(first.code, 0, first.stderr);
    const before = rssMb(pid);
    const samples: number[] = [];
    for (let i = 0; i < 4; i++) {
      const json = i % 2 === 1;
      const r = await weirCount(['conntrack', 'list', '--limit', String(FLOWS), ...(json ? ['--json'] : []), ...S]);
      assert.equal(r.code, 0, r.stderr);
      // A table: a header and one line per connection; JSON: many lines per connection.
      if (json) assert.ok(r.lines > FLOWS * 10, `${r.lines} JSON lines`);
      else assert.equal(r.lines, FLOWS + 1);
      samples.push(rssMb(pid));
    }
    const peak = Math.max(...samples);
    t.diagnostic(
      `daemon RSS with ${FLOWS} connections: ${before.toFixed(1)} MB before, ${samples.map((s) => s.toFixed(1)).join(' / ')} MB after each full listing (peak +${(peak - before).toFixed(1)} MB)`,
    );
    assert.ok(peak - before < 160, `RSS grew by ${(peak - before).toFixed(1)} MB`);
  },
);
