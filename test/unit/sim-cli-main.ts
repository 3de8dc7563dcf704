// Test harness: a commander program with only `weir simulate` registered, so the simulate CLI
// can be run as a process before the lead wires registerSimulate into src/cli/program.ts.
import { Command } from 'commander';
import { registerSimulate } from '../../src/cli/simulate.js';

const program = new Command('weir').exitOverride();
registerSimulate(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as { exitCode?: number; code?: string; message?: string };
  if (typeof err.code !== 'string' || !err.code.startsWith('commander.'))
    process.stderr.write(`weir: ${err.message ?? String(e)}\n`);
  process.exitCode = err.exitCode ?? 1;
}
