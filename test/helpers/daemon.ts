// Running the real `weir` binary from tests: one-shot commands, and daemons as child processes
// the test watches line by line and stops by PID.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';

export const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
/** A daemon with a fake data plane (test/helpers/control-harness.ts), for control-plane tests. */
export const HARNESS = path.join(PACKAGE_ROOT, 'dist-test', 'test', 'helpers', 'control-harness.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weir ARGS…` to completion (60 s at most). */
export function weir(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** weir … --json, asserting success; returns the parsed output. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON's shape; its assertions check it
export function weirJson<T = unknown>(...args: string[]): T {
  const r = weir(...args, '--json');
  if (r.status !== 0) throw new Error(`weir ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export class DaemonProcess {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private waiters: { re: RegExp; resolve: (line: string) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.re.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => (this.stderr += c));
    // 'close', not 'exit': it comes after stdout and stderr are drained, so the last lines are in.
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /** Resolves with the first stdout line (past or future) matching `re`; rejects if the process exits first. */
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(new Error(`timed out waiting for ${re}; stdout: ${this.lines.join('\n')}; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      this.waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(t);
        reject(new Error(`daemon exited (${code}) before ${re}; stderr: ${this.stderr}`));
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal to this child (by PID) if it is still running. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code. */
  async stop(graceMs = 5000): Promise<number | null> {
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

export interface StartOptions {
  /** Run the control harness (fake data plane) fed from this flows file instead of `weir run`. */
  flowsFile?: string;
  /** Run inside this network namespace (ip netns exec execs node, so the PID stays node's). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
}

const started: DaemonProcess[] = [];

/**
 * Starts `weir run -c FILE` as a child process. A test file that starts daemons registers
 * `after(stopDaemons)` at its top level, so every one is ended (by PID) even when a test fails.
 */
export function startDaemon(configFile: string, opts: StartOptions = {}): DaemonProcess {
  const node = opts.flowsFile
    ? [process.execPath, HARNESS, configFile, opts.flowsFile]
    : [process.execPath, CLI, 'run', '-c', configFile];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...node] : node;
  const child = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WEIR_LOG_LEVEL: '', ...opts.env },
  });
  const d = new DaemonProcess(child);
  started.push(d);
  return d;
}

/** SIGKILLs every daemon startDaemon() started that still runs, and waits for each to exit. */
export async function stopDaemons(): Promise<void> {
  for (const d of started) d.signal('SIGKILL');
  await Promise.all(started.map((d) => d.exited));
}

/** Runs `weir ARGS…` without blocking this process (for tests whose daemon runs in-process). */
export function weirAsync(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
