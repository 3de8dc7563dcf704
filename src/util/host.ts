// Host commands (ip, nft, sysctl): one runner, so every one is bounded in time, takes a script on
// stdin the same way, and fails with the same kind of message: the command, and the tool's own
// words (or how to install it when it is missing).
import { execFile, execFileSync } from 'node:child_process';

/** How to install the tools weir shells out to (Debian package names). */
const INSTALL: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  sysctl: 'procps',
};

export interface HostCommandOptions {
  /** Written to the command's stdin (nft -f -, ip -batch -). */
  input?: string;
  /** Milliseconds before the command is killed (default 10 000). */
  timeoutMs?: number;
}

function failure(argv: readonly string[], e: unknown): Error {
  const err = e as { code?: string; stderr?: string | Buffer; message: string };
  if (err.code === 'ENOENT') {
    const pkg = INSTALL[argv[0]];
    return new Error(`${argv[0]} is not installed${pkg ? `: apt-get install ${pkg}` : ''}`);
  }
  const said = (err.stderr?.toString() ?? '').trim();
  return new Error(`\`${argv.join(' ')}\` failed: ${said || err.message}`);
}

/** Runs argv, returns its stdout; throws naming the command and what it said. Blocks. */
export function runHost(argv: readonly string[], opts: HostCommandOptions = {}): string {
  try {
    return execFileSync(argv[0], argv.slice(1), {
      input: opts.input,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 10_000,
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw failure(argv, e);
  }
}

/** runHost without blocking the event loop (for periodic reads, e.g. routes and neighbours). */
export function runHostAsync(argv: readonly string[], opts: HostCommandOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 10_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => (err ? reject(failure(argv, Object.assign(err, { stderr }))) : resolve(stdout)),
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
