import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/cli/command.js';
import { commands } from '../../src/cli/commands/index.js';
import { ExitCode, exitCodeFor, UsageError } from '../../src/cli/exit-codes.js';
import { commandHelp, main, version } from '../../src/cli/main.js';
import { NotFoundError, ValidationError } from '../../src/errors.js';
import { projectRoot } from '../helpers/shared.js';
import { captureIo } from './io.js';

const pkg = JSON.parse(readFileSync(`${projectRoot}/package.json`, 'utf8')) as { version: string };

/** A command that throws what it is told to, for the framework tests. */
const probe: Command = {
  name: 'probe',
  summary: 'test command',
  synopsis: 'WHAT [MORE]',
  description: 'Throws an error chosen by WHAT.',
  options: {
    mode: { type: 'string', description: 'a mode', choices: ['a', 'b'], default: 'a', valueName: 'M' },
    flag: { type: 'boolean', short: 'f', description: 'a flag' },
  },
  positionals: { min: 1, max: 2 },
  async run({ args, options, io }) {
    const what = args[0];
    if (what === 'ok') {
      io.stdout(
        `mode=${String(options.mode)} flag=${String(options.flag ?? false)} args=${args.join(',')}\n`,
      );
      return 0;
    }
    if (what === 'invalid') throw ValidationError.one('network/name', 'a,b', "must not contain ','");
    if (what === 'notfound') throw new NotFoundError("network 'x' not found");
    if (what === 'denied')
      throw Object.assign(new Error('not allowed'), { type: 'org.freedesktop.DBus.Error.AccessDenied' });
    if (what === 'eacces') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    throw new Error('boom');
  },
};

describe('virtnetctl framework', () => {
  it('--help lists every registered command and the exit codes', async () => {
    const io = captureIo();
    expect(await main(['--help'], io)).toBe(0);
    for (const c of commands) expect(io.out).toContain(`  ${c.name}`);
    expect(io.out).toMatch(/2 +usage error/);
    expect(io.out).toMatch(/3 +not found/);
    expect(io.out).toMatch(/4 +access denied/);
  });

  it('no arguments: help on stderr, exit 2', async () => {
    const io = captureIo();
    expect(await main([], io)).toBe(ExitCode.USAGE);
    expect(io.err).toContain('Usage:');
    expect(io.out).toBe('');
  });

  it('--version prints the package.json version', async () => {
    const io = captureIo();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.out).toBe(`virtnetctl ${pkg.version}\n`);
    expect(version()).toBe(pkg.version);
  });

  it('every command has complete help (NAME --help, -h and help NAME agree)', async () => {
    for (const c of commands) {
      const a = captureIo();
      expect(await main([c.name, '--help'], a)).toBe(0);
      const b = captureIo();
      expect(await main(['help', c.name], b)).toBe(0);
      const h = captureIo();
      expect(await main([c.name, '-h'], h)).toBe(0);
      expect(a.out).toBe(commandHelp(c));
      expect(b.out).toBe(a.out);
      expect(h.out).toBe(a.out);
      expect(a.out).toContain(`Usage: virtnetctl ${c.name}`);
      for (const o of Object.keys(c.options)) expect(a.out).toContain(`--${o}`);
    }
  });

  it.each([
    [['nope'], /unknown command 'nope'/],
    [['--bogus'], /unknown option '--bogus'/],
    [['help', 'nope'], /no such command/],
    [['probe'], /takes 1 to 2 arguments/],
    [['probe', 'a', 'b', 'c'], /takes 1 to 2 arguments/],
    [['probe', 'ok', '--nope'], /Unknown option '--nope'/],
    [['probe', 'ok', '--mode', 'c'], /--mode must be one of a, b \(got 'c'\)/],
    [['probe', 'ok', '--mode'], /argument missing/],
  ])('usage error %j → exit 2 with a hint', async (argv, msg) => {
    const io = captureIo();
    expect(await main(argv, io, [probe])).toBe(ExitCode.USAGE);
    expect(io.err).toMatch(msg);
    expect(io.err).toContain("Try 'virtnetctl --help'.");
  });

  it('parses options and applies defaults', async () => {
    const io = captureIo();
    expect(await main(['probe', 'ok', 'x', '-f'], io, [probe])).toBe(0);
    expect(io.out).toBe('mode=a flag=true args=ok,x\n');
    const io2 = captureIo();
    expect(await main(['probe', '--mode=b', 'ok'], io2, [probe])).toBe(0);
    expect(io2.out).toBe('mode=b flag=false args=ok\n');
  });

  it.each([
    ['invalid', ExitCode.FAILURE, /virtnetctl: network\/name: must not contain ',' \(value "a,b"\)/],
    ['notfound', ExitCode.NOT_FOUND, /network 'x' not found/],
    ['denied', ExitCode.ACCESS_DENIED, /not allowed/],
    ['eacces', ExitCode.ACCESS_DENIED, /permission denied/],
    ['other', ExitCode.FAILURE, /boom/],
  ])('%s → exit %i', async (what, code, msg) => {
    const io = captureIo();
    expect(await main(['probe', what], io, [probe])).toBe(code);
    expect(io.err).toMatch(msg);
  });

  it('exitCodeFor maps errors to the documented codes', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(2);
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(3);
    expect(exitCodeFor({ type: 'org.virtnet.Error.NotFound' })).toBe(3);
    expect(exitCodeFor({ type: 'org.freedesktop.PolicyKit1.Error.NotAuthorized' })).toBe(4);
    expect(exitCodeFor(new Error('x'))).toBe(1);
    expect(exitCodeFor('string')).toBe(1);
  });
});
