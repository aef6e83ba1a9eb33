/**
 * The built program, run as a real subprocess (dist/ comes from `npm run build`, which `npm test`
 * runs first). Skips visibly when dist/ is absent; fails under CI=true.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inCI, projectRoot } from '../helpers/shared.js';

const bin = join(projectRoot, 'dist', 'src', 'bin', 'virtnetctl.js');
const missing = existsSync(bin) ? undefined : `${bin} not built (run npm run build)`;
if (missing && inCI) throw new Error(`CI=true and ${missing}`);
if (missing) console.warn(`SKIP: ${missing}`);

function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: stdout, err: stderr });
    });
  });
}

describe.skipIf(missing)('virtnetctl as a subprocess (dist/)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vh4-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.xml');
  const bad = join(dir, 'bad.xml');
  writeFileSync(
    good,
    `<network><name>demo</name><forward mode='nat'/><bridge name='vnbr9'/>
     <ip address='10.99.0.1' prefix='24'><dhcp><range start='10.99.0.10' end='10.99.0.20'/></dhcp></ip></network>`,
  );
  writeFileSync(bad, `<network><name>demo,x</name><ip address='10.99.0.1' prefix='99'/></network>`);

  it('starts with a node shebang (npm makes bin entries executable on install)', () => {
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('--version and --help', async () => {
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ code: 0, out: `virtnetctl ${pkg.version}\n`, err: '' });
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('validate');
    expect(h.out).toContain('plan');
  });

  it('the D-Bus library is loaded only by the bus commands (not for --version, --help or validate)', async () => {
    // A preload that reports, at exit, whether dbus-next (CommonJS, so in require.cache) was loaded.
    const probe = join(dir, 'probe.cjs');
    writeFileSync(
      probe,
      `process.on('exit', () => process.stderr.write('dbus-next loaded: ' + Object.keys(require.cache).some((k) => k.includes('dbus-next')) + '\\n'));`,
    );
    const loaded = (args: string[]) =>
      new Promise<string>((resolve) => {
        execFile(
          process.execPath,
          ['--require', probe, bin, ...args],
          { timeout: 20_000 },
          (_e, _o, stderr) => resolve(/dbus-next loaded: (\w+)/.exec(stderr)?.[1] ?? 'no report'),
        );
      });
    expect(await loaded(['--version'])).toBe('false');
    expect(await loaded(['--help'])).toBe('false');
    expect(await loaded(['validate', good])).toBe('false');
    expect(await loaded(['list', '--bus', `unix:path=${join(dir, 'no-bus.sock')}`])).toBe('true');
  });

  it('validate: 0 for a valid file, 1 with one line per problem, 2 for usage, 3 for a missing file', async () => {
    expect((await run(['validate', good])).code).toBe(0);
    const b = await run(['validate', bad]);
    expect(b.code).toBe(1);
    const lines = b.err.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^.*bad\.xml: network\/\S+: .+ \(value .+\)$/);
    expect((await run(['validate'])).code).toBe(2);
    expect((await run(['validate', join(dir, 'nope.xml')])).code).toBe(3);
  });

  it('plan --json prints the plan object with its keys', async () => {
    const r = await run(['plan', good, '--json', '--firewall', 'iptables']);
    expect(r.code, r.err).toBe(0);
    expect(Object.keys(JSON.parse(r.out))).toEqual([
      'dnsmasqConf',
      'hostsfile',
      'addnhosts',
      'dnsmasqArgv',
      'paths',
      'firewall',
      'firewallRules',
      'links',
    ]);
  });
});
