#!/usr/bin/env node
// Entry point of the `weir` command; the commands live in program.ts.
import { main } from './program.js';

await main(process.argv);
