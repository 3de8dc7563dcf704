#!/usr/bin/env node
// Standalone entry for `weir decap` (node dist/src/cli/decap-main.js decap ...), for backends
// and lab tests until the command is wired into program.ts. Exit 1 with a message on failure.
import { Command } from 'commander';
import { registerDecap } from './decap.js';

const program = new Command('weir').showHelpAfterError();
registerDecap(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`weir decap: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
