// Lab helpers for the BGP tests: a speaker child process inside a namespace, polling, a two-
// namespace veth pair, and writing captured peer messages as golden fixtures.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addNs, inNs, sh } from '../helpers/net.js';
import type { SessionOptions } from '../../src/bgp/session.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist-test/test/lab
export const repoRoot = path.resolve(here, '..', '..', '..');
export const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'bgp');

export interface SpeakerEvent {
  ev: string;
  state?: string;
  type?: string;
  hex?: string;
  info?: { reason: string; sent?: { code: number; subcode: number }; received?: { code: number; subcode: number } };
}

/** The speaker child (test/lab/bgp-speaker-child.ts) running in namespace `ns`. */
export class SpeakerChild {
  readonly events: SpeakerEvent[] = [];
  readonly proc: ChildProcess;
  private exited: Promise<number | null>;

  constructor(ns: string, opts: SessionOptions & { sigtermWaitMs?: number }) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(here, 'bgp-speaker-child.js'), JSON.stringify(opts)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l) as SpeakerEvent);
      } catch {
        /* not ours */
      }
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  send(cmd: object): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  announce(prefix: string, attrs: object = {}): void {
    this.send({ op: 'announce', prefix, attrs });
  }

  withdraw(prefix: string): void {
    this.send({ op: 'withdraw', prefix });
  }

  /** Resolves with the first event (at or after index `from`) matching `pred`. */
  async waitEvent(pred: (e: SpeakerEvent) => boolean, timeoutMs: number, from = 0): Promise<SpeakerEvent> {
    let found: SpeakerEvent | undefined;
    await waitUntil(() => (found = this.events.slice(from).find(pred)) !== undefined, timeoutMs, `speaker event not seen in ${timeoutMs} ms`);
    return found!;
  }

  /** SIGTERM (the ip-netns-exec wrapper execs node, so the pid is node's). */
  terminate(): void {
    this.proc.kill('SIGTERM');
  }

  async exit(timeoutMs = 3000): Promise<number | null> {
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** Polls `fn` every 100 ms until it returns true; throws `msg` after timeoutMs. */
export async function waitUntil(fn: () => boolean, timeoutMs: number, msg: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return;
    if (Date.now() > deadline) throw new Error(msg);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Two fresh namespaces joined by a veth pair with one v4 /30 and one v6 /64 address each. */
export function vethPair(a: { ns: string; dev: string; v4: string; v6: string }, b: { ns: string; dev: string; v4: string; v6: string }): void {
  addNs(a.ns);
  addNs(b.ns);
  sh('ip', ['link', 'add', a.dev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns]);
  for (const s of [a, b]) {
    inNs(s.ns, 'ip', ['addr', 'add', `${s.v4}/30`, 'dev', s.dev]);
    inNs(s.ns, 'ip', ['addr', 'add', `${s.v6}/64`, 'dev', s.dev, 'nodad']);
    inNs(s.ns, 'ip', ['link', 'set', s.dev, 'up']);
  }
}

/** Saves a captured message as a golden fixture when WEIR_BGP_WRITE_FIXTURES=1. */
export function maybeWriteFixture(name: string, source: string, expect: string, hex: string): void {
  if (process.env.WEIR_BGP_WRITE_FIXTURES !== '1') return;
  mkdirSync(fixtureDir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(path.join(fixtureDir, `${name}.hex`), `# source: ${source}\n# captured: ${date} by test/lab (WEIR_BGP_WRITE_FIXTURES=1)\n# expect: ${expect}\n${hex}\n`);
}

/** `birdc` against the BIRD control socket `sock` in namespace `ns` ('' when it doesn't answer). */
export function birdc(ns: string, sock: string, ...args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'birdc', '-s', sock, ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout ?? '';
}

/** The `show route all protocol P` block of one prefix, or '' when BIRD doesn't have it. */
export function birdRouteBlock(ns: string, sock: string, protocol: string, prefix: string): string {
  const lines = birdc(ns, sock, 'show', 'route', 'all', 'protocol', protocol).split('\n');
  const start = lines.findIndex((l) => l.startsWith(prefix + ' '));
  if (start < 0) return '';
  let end = start + 1;
  while (end < lines.length && /^\s/.test(lines[end])) end++;
  return lines.slice(start, end).join('\n') + '\n';
}

/**
 * Starts gobgpd in namespace `ns` as a passive peer of `peer` (AS `peerAs`), IPv4 and IPv6
 * unicast, hold time 3 s; its config goes to `dir`/gobgp.toml and its API to 127.0.0.1:50051.
 */
export function startGobgpd(ns: string, dir: string, o: { as: number; routerId: string; peer: string; peerAs: number }): ChildProcess {
  const conf = path.join(dir, 'gobgp.toml');
  writeFileSync(conf, `[global.config]
  as = ${o.as}
  router-id = "${o.routerId}"
  local-address-list = ["${o.routerId}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${o.peer}"
    peer-as = ${o.peerAs}
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
    connect-retry = 2
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`);
  return spawn('ip', ['netns', 'exec', ns, 'gobgpd', '-f', conf, '-t', 'toml', '--api-hosts', '127.0.0.1:50051'], { stdio: 'ignore' });
}

/** Ends a child this test started (by its handle) and waits for it to exit. */
export async function stopChild(p: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await done;
}
