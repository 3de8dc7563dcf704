#!/usr/bin/env node
// Entry point of the `weir` command; the commands live in program.ts.
import { main } from './program.js';

// The reader of stdout or stderr went away (`weir status | head -3`, or the journal restarted
// under `weir run`). A one-shot command exits quietly like other Unix tools instead of printing
// a stack trace; a long-running one (run, decap) keeps forwarding and loses only log lines.
const longRunning = ['run', 'decap'].includes(process.argv[2] ?? '');
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!longRunning) process.exit(0);
  });
}

await main(process.argv);
