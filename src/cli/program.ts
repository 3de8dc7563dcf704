// The `weir` command line: parses arguments and hands off to the library or the control client.
import { Command } from 'commander';
import { VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('weir')
    .description('weir: an L4 passthrough / direct-server-return load balancer')
    .version(VERSION, '-V, --version', 'print the weir version')
    .showHelpAfterError();
  return program;
}
