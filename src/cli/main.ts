#!/usr/bin/env node
// Entry point of the `weir` command; the commands live in program.ts.
import { buildProgram } from './program.js';

await buildProgram().parseAsync(process.argv);
