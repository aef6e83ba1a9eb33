#!/usr/bin/env node
/** virtnetctl entry point: all logic is in src/cli/main.ts. */
import { main } from '../cli/main.js';

process.exitCode = await main(process.argv.slice(2));
// A bus call given up on (e.g. a bus activation past its bound) can leave the bus's reply pending on
// an open socket; the command's answer is already out, so end here.
process.exit();
