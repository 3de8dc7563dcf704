// Lab helpers for the BGP tests: a speaker child process inside a namespace, polling, a two-
// namespace veth pair, writing captured peer messages as golden fixtures, and FRR as a peer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chmodSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
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
    this.proc = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, path.join(here, 'bgp-speaker-child.js'), JSON.stringify(opts)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
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
    await waitUntil(
      () => (found = this.events.slice(from).find(pred)) !== undefined,
      timeoutMs,
      `speaker event not seen in ${timeoutMs} ms`,
    );
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
export function vethPair(
  a: { ns: string; dev: string; v4: string; v6: string },
  b: { ns: string; dev: string; v4: string; v6: string },
): void {
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
  writeFileSync(
    path.join(fixtureDir, `${name}.hex`),
    `# source: ${source}\n# captured: ${date} by test/lab (WEIR_BGP_WRITE_FIXTURES=1)\n# expect: ${expect}\n${hex}\n`,
  );
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
export function startGobgpd(
  ns: string,
  dir: string,
  o: { as: number; routerId: string; peer: string; peerAs: number },
): ChildProcess {
  const conf = path.join(dir, 'gobgp.toml');
  writeFileSync(
    conf,
    `[global.config]
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
`,
  );
  return spawn('ip', ['netns', 'exec', ns, 'gobgpd', '-f', conf, '-t', 'toml', '--api-hosts', '127.0.0.1:50051'], {
    stdio: 'ignore',
  });
}

/** Ends a child this test started (by its handle) and waits for it to exit. */
export async function stopChild(p: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await done;
}

/**
 * FRR (zebra, bgpd, bfdd) in namespace `ns`, each daemon in the foreground with a config file of
 * its own under `dir` (the frr user must own it: FRR refuses to run as root, LAB-NOTES). zebra
 * installs what bgpd learns into the namespace's kernel, so tests can judge by `ip route`.
 */
export class Frr {
  private readonly procs: ChildProcess[] = [];
  readonly dir: string;

  constructor(
    readonly ns: string,
    parent: string,
  ) {
    this.dir = path.join(parent, 'frr');
  }

  /** Writes the configs, starts the daemons and waits (10 s) for their vty sockets. */
  async start(conf: { bgpd: string; bfdd?: string }): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    chmodSync(path.dirname(this.dir), 0o711); // frr must be able to reach its directory
    const head = `frr defaults traditional\nhostname ${this.ns}\nlog file ${this.dir}/frr.log informational\n!\n`;
    writeFileSync(path.join(this.dir, 'zebra.conf'), head);
    writeFileSync(path.join(this.dir, 'bgpd.conf'), head + conf.bgpd);
    writeFileSync(path.join(this.dir, 'bfdd.conf'), head + (conf.bfdd ?? ''));
    sh('chown', ['-R', 'frr:frr', this.dir]);
    const run = (d: string, extra: string[] = []) =>
      this.procs.push(
        spawn(
          'ip',
          [
            'netns',
            'exec',
            this.ns,
            `/usr/lib/frr/${d}`,
            '-N',
            this.ns,
            '-z',
            `${this.dir}/zserv.api`,
            '-i',
            `${this.dir}/${d}.pid`,
            '--vty_socket',
            this.dir,
            '-f',
            `${this.dir}/${d}.conf`,
            ...extra,
          ],
          { stdio: 'ignore' },
        ),
      );
    run('zebra');
    await waitUntil(() => existsSync(`${this.dir}/zserv.api`), 10_000, 'zebra did not start');
    run('bgpd');
    run('bfdd', ['--bfdctl', `${this.dir}/bfdd.sock`]);
    await waitUntil(
      () => existsSync(`${this.dir}/bgpd.vty`) && existsSync(`${this.dir}/bfdd.vty`),
      10_000,
      'bgpd/bfdd did not start',
    );
  }

  /** vtysh with one or more commands ('' when FRR does not answer). */
  vtysh(...commands: string[]): string {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', this.ns, 'vtysh', '--vty_socket', this.dir, ...commands.flatMap((c) => ['-c', c])],
      { encoding: 'utf8', timeout: 10_000 },
    );
    return r.stdout ?? '';
  }

  /** A `show … json` command, parsed; {} when FRR does not answer. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON's shape; its assertions check it
  json<T = Record<string, unknown>>(command: string): T {
    try {
      return JSON.parse(this.vtysh(command) || '{}') as T;
    } catch {
      return {} as T;
    }
  }

  /** Configuration commands under `router bgp AS`. */
  configureBgp(as: number, ...lines: string[]): void {
    this.vtysh('configure terminal', `router bgp ${as}`, ...lines, 'end');
  }

  /** Sends `signal` to one of the daemons this test started (zebra, bgpd or bfdd), by its handle. */
  signal(daemon: 'zebra' | 'bgpd' | 'bfdd', signal: NodeJS.Signals): void {
    this.procs[['zebra', 'bgpd', 'bfdd'].indexOf(daemon)]?.kill(signal);
  }

  /** Ends the daemons this test started (by their handles). */
  async stop(): Promise<void> {
    for (const p of this.procs.splice(0).reverse()) await stopChild(p, 'SIGTERM');
  }
}
