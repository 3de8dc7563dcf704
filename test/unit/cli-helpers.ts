// Helpers for the CLI tests: run the real `weir` binary, and start daemons as child processes
// that the tests stop by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../../src/version.js';

export const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
export const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'control-harness.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function weir(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** weir … --json, asserting success; returns the parsed output. */
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
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** Resolves with the first stdout line (past or future) matching `re`; rejects if the process exits first. */
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout: ${this.lines.join('\n')}; stderr: ${this.stderr}`)), timeoutMs);
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

  /** Sends a signal to this child (by PID) if it is still running. */
  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
}

/** Starts `weir run -c FILE` (or the harness with a fake data plane when `flowsFile` is given). */
export function startDaemon(configFile: string, flowsFile?: string): DaemonProcess {
  const args = flowsFile ? [HARNESS, configFile, flowsFile] : [CLI, 'run', '-c', configFile];
  return new DaemonProcess(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEIR_LOG_LEVEL: '' } }));
}
