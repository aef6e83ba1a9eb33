/** src/bin/virtnetd.ts as a process: --help, --version, usage errors, an unreachable bus. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execOut } from '../helpers/dbus.js';
import { projectRoot } from '../helpers/shared.js';

const run = (args: string[]) =>
  execOut(
    [
      'node',
      '--import',
      join(projectRoot, 'test/helpers/ts-register.mjs'),
      join(projectRoot, 'src/bin/virtnetd.ts'),
      ...args,
    ],
    {
      timeoutMs: 60_000,
    },
  );

describe('virtnetd executable', () => {
  it('--help, --version', async () => {
    const [help, version] = await Promise.all([run(['--help']), run(['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: virtnetd \[OPTIONS\]/);
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^virtnetd \d+\.\d+\.\d+\n$/) });
  });

  it('usage error exits 2; an unreachable bus exits 1 with one clear line', async () => {
    const [bad, nobus] = await Promise.all([
      run(['--firewall', 'pf']),
      run([
        '--bus',
        'unix:path=/nonexistent/vh7.sock',
        '--config-dir',
        '/nonexistent/vh7/c',
        '--state-dir',
        '/nonexistent/vh7/s',
        '--run-dir',
        '/nonexistent/vh7/r',
      ]),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      "virtnetd: --firewall expects auto, nftables or iptables (got 'pf')\nTry 'virtnetd --help'.\n",
    );
    expect(nobus.code).toBe(1);
    expect(nobus.stderr).toMatch(
      /error\s+cannot connect to the bus at unix:path=\/nonexistent\/vh7\.sock: .*ENOENT/,
    );
  });
});
