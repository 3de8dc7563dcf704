// The nat SYN proxy in the netns lab (one worker per instance): real kernel TCP (curl, iperf3)
// through VIPs with syn_proxy: on, judged by the client's and backends' stacks and by tshark;
// then a bounded hping3 random-source SYN flood on the nat VIP (syn_proxy: auto, the default)
// while legitimate requests run. The 20 s measurement per mode is scripts/bench/syn-flood.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { labSkipReason, linkMac } from '../helpers/net.js';
import { sleep } from '../helpers/wait.js';
import { synFlood } from '../../scripts/bench/syn-flood.js';
import {
  assertNoBadChecksumsIntroduced,
  Capture,
  CLIENT,
  curlMany,
  dpCounters,
  labDown,
  labStatus,
  labUp,
  LBS,
  urlOf,
  weir,
} from './dataplane-lab.js';

const skip = labSkipReason();
const NAT4 = '198.18.100.1';
const NAT6 = 'fd00:0:0:100::1';

interface VipYaml {
  name: string;
  syn_proxy?: string;
}

/** Sets syn_proxy on the named VIPs of every lab instance and reloads each. */
function setSynProxy(mode: 'on' | 'auto' | 'off', names: string[]): void {
  for (const w of labStatus().weir) {
    const doc = YAML.parse(readFileSync(w.config, 'utf8')) as { vips: VipYaml[] };
    for (const n of names) {
      const v = doc.vips.find((x) => x.name === n);
      assert.ok(v, `${n} in ${w.config}`);
      v.syn_proxy = mode;
    }
    writeFileSync(w.config, YAML.stringify(doc));
    const r = weir<{ ok: boolean }>(w.ns, ['reload']);
    assert.equal(r.ok, true, `${w.ns} reloaded`);
  }
}

/** A counter summed over both instances. */
function total(name: string): number {
  return LBS.reduce((s, ns) => s + (dpCounters(ns)[name] ?? 0), 0);
}

function iperf(address: string, reverse: boolean): { bytes: number; error?: string } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      CLIENT,
      'timeout',
      '30',
      'iperf3',
      '-c',
      address,
      '-p',
      '5201',
      '-t',
      '3',
      '-J',
      '--connect-timeout',
      '3000',
      ...(reverse ? ['-R'] : []),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const j = JSON.parse(r.stdout || '{}') as { error?: string; end?: { sum_received?: { bytes: number } } };
  return { bytes: j.end?.sum_received?.bytes ?? 0, ...(j.error ? { error: j.error } : {}) };
}

describe('the nat SYN proxy carries kernel TCP and keeps nat serving under a SYN flood', { skip }, () => {
  const macs: Record<string, string> = {};
  before(() => {
    labUp();
    for (const ns of LBS) macs[ns] = linkMac(ns, 'fab0');
    setSynProxy('on', ['web-nat', 'web6-nat', 'iperf-nat']);
  });
  after(() => labDown());

  test('syn_proxy on: curl over IPv4 and IPv6 connects through cookie handshakes; tshark finds no bad checksum weir introduced', async (t) => {
    const cookies0 = total('txSynCookie'),
      proxied0 = total('synProxied');
    const caps = [new Capture(CLIENT, 'front0'), ...LBS.map((ns) => new Capture(ns, 'fab0'))];
    try {
      await Promise.all(caps.map((c) => c.ready()));
      for (const address of [NAT4, NAT6]) {
        const { failures } = curlMany(urlOf(address), 40, 8);
        assert.equal(failures, 0, `all 40 requests to ${address} answered`);
      }
    } finally {
      await Promise.all(caps.map((c) => c.stop()));
    }
    try {
      const cookies = total('txSynCookie') - cookies0,
        proxied = total('synProxied') - proxied0;
      assert.ok(cookies >= 80, `80 cookie SYN-ACKs at least, got ${cookies}`);
      assert.ok(proxied >= 80, `80 connections established through cookies, got ${proxied}`);
      // The client saw SYN-ACKs from the VIPs: weir's, not the backends' (which went to the SNAT address).
      const synAcks = caps[0].packets().filter((p) => (p.src === NAT4 || p.src === NAT6) && p.sport === 80);
      assert.ok(synAcks.length > 0, 'replies from the VIPs');
      const bad = assertNoBadChecksumsIntroduced(caps.slice(1), macs, {
        capture: caps[0],
        mac: linkMac(CLIENT, 'front0'),
      });
      if (bad > 0) t.diagnostic(`${bad} frame(s) arrived at a weir host already bad (not weir's)`);
    } finally {
      for (const c of caps) c.remove();
    }
  });

  test('syn_proxy on: iperf3 moves data both ways (window scaling, SACK and timestamps translated)', (t) => {
    for (const reverse of [false, true]) {
      const r = iperf(NAT4, reverse);
      assert.equal(r.error, undefined, `iperf3${reverse ? ' -R' : ''}: ${r.error}`);
      assert.ok(r.bytes > 1_000_000, `more than 1 MB arrived${reverse ? ' (reverse)' : ''}: ${r.bytes}`);
      t.diagnostic(`iperf3${reverse ? ' -R' : ''}: ${(r.bytes / 1e6).toFixed(0)} MB in 3 s`);
    }
  });

  test('syn_proxy auto: during a random-source SYN flood ≥ 99% of legitimate requests succeed, no spoofed flow takes a SNAT port, and nat serves again within 1 s after it', async (t) => {
    setSynProxy('auto', ['web-nat']);
    const c0 = {
      cookies: total('txSynCookie'),
      autoOn: total('synProxyAutoOn'),
      exhausted: total('dropSnatExhausted'),
      full: total('dropConntrackFull'),
    };
    // Bounded: 6 s and 400k packets at most, spoofed sources, only to the lab VIP.
    const flood = synFlood(NAT4, 6, 400_000);
    const ended = new Promise<void>((r) => flood.once('close', () => r()));
    try {
      await sleep(500);
      const during = curlMany(urlOf(NAT4), 100, 10);
      const floodRunning = flood.exitCode === null;
      const ok = 100 - during.failures;
      t.diagnostic(`during the flood: ${ok}/100 requests succeeded (flood still running at the end: ${floodRunning})`);
      assert.ok(ok >= 99, `≥ 99 of 100 requests succeed during the flood, got ${ok}`);
    } finally {
      await ended;
    }
    const cookies = total('txSynCookie') - c0.cookies;
    t.diagnostic(`cookie SYN-ACKs sent: ${cookies}`);
    assert.ok(cookies > 5000, `the flood reached weir and was answered with cookies: ${cookies}`);
    assert.ok(total('synProxyAutoOn') > c0.autoOn, 'auto switched to cookies');
    assert.equal(total('dropSnatExhausted') - c0.exhausted, 0, 'no SNAT exhaustion');
    assert.equal(total('dropConntrackFull') - c0.full, 0, 'no full table');
    // After the flood: one second later, nat answers without cookies again.
    await sleep(1000);
    const cookiesAfter = total('txSynCookie');
    const after = curlMany(urlOf(NAT4), 20, 4);
    assert.equal(after.failures, 0, 'every request after the flood succeeds');
    assert.equal(total('txSynCookie'), cookiesAfter, 'no cookies once the flood is over');
  });
});
