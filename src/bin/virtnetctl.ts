#!/usr/bin/env node
/** virtnetctl entry point: all logic is in src/cli/main.ts. */
import { main } from '../cli/main.js';

process.exitCode = await main(process.argv.slice(2));
