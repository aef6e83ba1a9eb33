import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/errors.js';
import { createRunner, DryRunRunner, effectiveArgv, SpawnRunner } from '../../src/exec/runner.js';

describe('createRunner', () => {
  it("'host' is one shared SpawnRunner; 'dry-run' a fresh recorder each time", () => {
    const host = createRunner();
    expect(host).toBeInstanceOf(SpawnRunner);
    expect(createRunner('host')).toBe(host);
    const dry = createRunner('dry-run');
    expect(dry).toBeInstanceOf(DryRunRunner);
    expect(createRunner('dry-run')).not.toBe(dry);
  });
});

describe.each([['createRunner()', createRunner()]])('%s', (_name, r) => {
  it('runs argv without a shell and returns stdout', async () => {
    const res = await r.run({ step: 'echo', argv: ['echo', '$HOME;', '`id`'] });
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toBe('$HOME; `id`\n');
  });
  it('feeds stdin', async () => {
    const res = await r.run({ step: 'cat', argv: ['cat'], input: 'a\nb\n' });
    expect(res.stdout).toBe('a\nb\n');
  });
  it('throws CommandError naming the step, argv and stderr', async () => {
    const err = await r
      .run({ step: 'links: create bridge', argv: ['sh', '-c', 'echo boom >&2; exit 3'] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.step).toBe('links: create bridge');
    expect(err.exitCode).toBe(3);
    expect(err.stderr).toContain('boom');
    expect(err.message).toContain(
      "links: create bridge: 'sh -c echo boom >&2; exit 3' failed (exit 3): boom",
    );
  });
  it('returns a failure when allowFail', async () => {
    const res = await r.run({ step: 'f', argv: ['false'], allowFail: true });
    expect(res.exitCode).toBe(1);
  });
  it('names a command that does not exist', async () => {
    const err = await r.run({ step: 'missing', argv: ['/nonexistent/tool-x'] }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.message).toMatch(/tool-x/);
  });
  it('a command that does not exist is an error also with allowFail (not an exit status)', async () => {
    const err = await r
      .run({ step: 'missing', argv: ['/nonexistent/tool-x'], allowFail: true })
      .catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.message).toMatch(/ENOENT/);
  });
});

describe('effectiveArgv', () => {
  it('prefixes ip netns exec', () => {
    expect(effectiveArgv({ step: 's', argv: ['nft', 'list', 'ruleset'], netns: 'vh5-host' })).toEqual([
      'ip',
      'netns',
      'exec',
      'vh5-host',
      'nft',
      'list',
      'ruleset',
    ]);
  });
  it('rejects an empty argv', () => {
    expect(() => effectiveArgv({ step: 's', argv: [] })).toThrow(/empty argv/);
  });
});

describe('DryRunRunner', () => {
  it('records calls and answers from canned results', async () => {
    const d = new DryRunRunner().on(['nft', '--version'], { stdout: 'nftables v1.0.6\n' });
    expect((await d.run({ step: 'v', argv: ['nft', '--version'] })).stdout).toBe('nftables v1.0.6\n');
    expect((await d.run({ step: 'x', argv: ['ip', 'link'] })).exitCode).toBe(0);
    expect(d.commandLines()).toEqual(['nft --version', 'ip link']);
  });
  it('throws for canned failures unless allowFail', async () => {
    const d = new DryRunRunner().on(['ip'], { exitCode: 2, stderr: 'RTNETLINK answers: File exists' });
    await expect(d.run({ step: 'links', argv: ['ip', '-batch', '-'] })).rejects.toThrow(/File exists/);
    expect((await d.run({ step: 'links', argv: ['ip'], allowFail: true })).exitCode).toBe(2);
  });
});
