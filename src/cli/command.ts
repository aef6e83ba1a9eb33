/**
 * What a virtnetctl subcommand is. Each subcommand lives in its own file under `commands/` and is
 * listed once in `commands/index.ts`; main.ts does the rest (argument parsing with node:util
 * parseArgs, `--help`, positional count checks, error → exit code).
 */

import { readFile } from 'node:fs/promises';

/** Where a command reads and writes: the real process, or a capture in tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readFile(path: string): Promise<string>;
  env: Record<string, string | undefined>;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** One line for `--help`. */
  description: string;
  /** Placeholder shown in help for string options, e.g. 'BACKEND'. */
  valueName?: string;
  /** Allowed values of a string option (checked before `run`; shown in help). */
  choices?: readonly string[];
  default?: string | boolean;
}

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandContext {
  /** Positional arguments after the command name. */
  args: string[];
  /** Parsed options (defaults applied). */
  options: OptionValues;
  io: CliIo;
}

export interface Command {
  /** The word after `virtnetctl`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Argument synopsis after the name, e.g. 'FILE.xml'. */
  synopsis: string;
  /** Paragraph(s) shown by `virtnetctl NAME --help`. */
  description: string;
  options: Record<string, OptionSpec>;
  /** Example command lines shown under "Examples:" in `--help` (without the leading program name). */
  examples?: readonly string[];
  /** How many positional arguments are accepted. */
  positionals: { min: number; max: number };
  /** Returns the exit code; may throw (main maps errors to exit codes). */
  run(ctx: CommandContext): Promise<number>;
}

export function processIo(): CliIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: (p) => readFile(p, 'utf8'),
    env: process.env,
  };
}
