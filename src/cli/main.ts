/**
 * virtnetctl: the command-line front end. `main(argv, io)` is the whole program (src/bin/virtnetctl.ts
 * only calls it with the process's argv and streams), so tests run it in-process.
 */

import { parseArgs } from 'node:util';
import { virtnetVersion } from '../util/package.js';
import type { CliIo, Command, OptionSpec, OptionValues } from './command.js';
import { processIo } from './command.js';
import { commands as registry } from './commands/index.js';
import { ExitCode, exitCodeFor, UsageError } from './exit-codes.js';
import { PROG, reportError } from './report.js';

/** The version in virtnet's package.json. */
export function version(): string {
  return virtnetVersion();
}

const EXIT_CODES_HELP = `Exit status:
  0  success
  1  invalid input or the operation failed
  2  usage error (unknown command or option, wrong arguments)
  3  not found (no such network or file)
  4  access denied
`;

export function toolHelp(commands: readonly Command[] = registry): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `${PROG} — control virtnet, libvirt-compatible virtual networks (NAT, routed, isolated, bridged, open)

Usage:
  ${PROG} <command> [options] [arguments]
  ${PROG} help <command>
  ${PROG} --help | --version

Commands:
${list}

Options:
  -h, --help     show this help (or a command's help with '${PROG} <command> --help')
  -V, --version  print the version

${EXIT_CODES_HELP}`;
}

function optionLine(name: string, spec: OptionSpec): [string, string] {
  const short = spec.short ? `-${spec.short}, ` : '    ';
  const value = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
  let desc = spec.description;
  if (spec.choices) desc += ` (${spec.choices.join(', ')})`;
  if (spec.default !== undefined && spec.type === 'string') desc += ` [default: ${spec.default}]`;
  return [`${short}--${name}${value}`, desc];
}

export function commandHelp(cmd: Command): string {
  const lines: [string, string][] = Object.entries(cmd.options).map(([n, s]) => optionLine(n, s));
  lines.push(['-h, --help', 'show this help']);
  const width = Math.max(...lines.map(([l]) => l.length));
  const opts = lines.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`).join('\n');
  return `Usage: ${PROG} ${cmd.name}${cmd.synopsis ? ` ${cmd.synopsis}` : ''}${Object.keys(cmd.options).length ? ' [options]' : ''}

${cmd.summary}

${cmd.description.trim()}

Options:
${opts}
${cmd.examples?.length ? `\nExamples:\n${cmd.examples.map((e) => `  ${PROG} ${e}`).join('\n')}\n` : ''}
${EXIT_CODES_HELP}`;
}

function parseCommandArgs(
  cmd: Command,
  argv: string[],
): { args: string[]; options: OptionValues; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [n, s] of Object.entries(cmd.options)) {
    options[n] = {
      type: s.type,
      ...(s.short ? { short: s.short } : {}),
      ...(s.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const values = parsed.values as OptionValues;
  if (values.help === true) return { args: parsed.positionals, options: values, help: true };
  for (const [n, s] of Object.entries(cmd.options)) {
    const v = values[n];
    if (v === undefined && s.default !== undefined) values[n] = s.default;
    if (s.choices && typeof v === 'string' && !s.choices.includes(v))
      throw new UsageError(`--${n} must be one of ${s.choices.join(', ')} (got '${v}')`);
  }
  const { min, max } = cmd.positionals;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new UsageError(
      `'${cmd.name}' takes ${want} argument${max === 1 ? '' : 's'} (${cmd.synopsis}), got ${n}`,
    );
  }
  return { args: parsed.positionals, options: values, help: false };
}

/**
 * Run virtnetctl with `argv` (the arguments after the program name). Returns the exit code; never
 * throws.
 */
export async function main(
  argv: string[],
  io: CliIo = processIo(),
  commands: readonly Command[] = registry,
): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr(toolHelp(commands));
      return ExitCode.USAGE;
    }
    if (first === '--help' || first === '-h') {
      io.stdout(toolHelp(commands));
      return ExitCode.OK;
    }
    if (first === '--version' || first === '-V') {
      io.stdout(`${PROG} ${version()}\n`);
      return ExitCode.OK;
    }
    if (first === 'help') {
      if (rest.length === 0) {
        io.stdout(toolHelp(commands));
        return ExitCode.OK;
      }
      const cmd = commands.find((c) => c.name === rest[0]);
      if (!cmd || rest.length > 1) throw new UsageError(`no such command: '${rest.join(' ')}'`);
      io.stdout(commandHelp(cmd));
      return ExitCode.OK;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' (options follow the command)`);
    const cmd = commands.find((c) => c.name === first);
    if (!cmd) throw new UsageError(`unknown command '${first}'`);
    const { args, options, help } = parseCommandArgs(cmd, rest);
    if (help) {
      io.stdout(commandHelp(cmd));
      return ExitCode.OK;
    }
    return await cmd.run({ args, options, io });
  } catch (err) {
    reportError(io, err);
    return exitCodeFor(err);
  }
}
