/**
 * The inotify headroom check: the pure refusal, the guard's recount policy, and the count against the
 * real kernel — in a user namespace of the test's own with a tiny limit, the kernel refuses exactly
 * the instance the count says is not there.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chargedToRoot,
  InotifyGuard,
  type InotifySource,
  inotifyRefusal,
  RECOUNT_MARGIN,
} from '../../src/dnsmasq/inotify.js';
import { DnsmasqSupervisor } from '../../src/dnsmasq/supervisor.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

describe('inotifyRefusal', () => {
  it('fits while one more instance is under the limit; the refusal names limit, count and sysctl', () => {
    expect(inotifyRefusal(128, 127, 'n')).toBeUndefined();
    const r = inotifyRefusal(128, 128, 'ci-42');
    expect(r).toContain("network 'ci-42'");
    expect(r).toContain('128 of fs.inotify.max_user_instances=128');
    expect(r).toContain('sysctl -w fs.inotify.max_user_instances=');
    expect(r).not.toContain('\n');
  });

  it('root processes and every dnsmasq are charged to root', () => {
    expect(chargedToRoot('Name:\tx\nUid:\t0\t0\t0\t0\n', 'x\n')).toBe(true);
    expect(chargedToRoot('Uid:\t1000\t1000\t1000\t1000\n', 'bash\n')).toBe(false);
    expect(chargedToRoot('Uid:\t65534\t65534\t65534\t65534\n', 'dnsmasq\n')).toBe(true);
  });
});

function source(limit: number, used: number): InotifySource & { counts: number; used: number } {
  const s = {
    counts: 0,
    used,
    limit: async () => limit,
    count: async () => {
      s.counts++;
      return s.used;
    },
  };
  return s;
}

describe('InotifyGuard', () => {
  it('counts once far from the limit, then for real near it, and refuses at it', async () => {
    const src = source(40, 2);
    const g = new InotifyGuard(src);
    await g.check('a'); // first: counts
    expect(src.counts).toBe(1);
    for (let i = 0; i < 40 - 2 - RECOUNT_MARGIN - 1; i++) await g.check('a');
    expect(src.counts).toBe(1); // estimate still far from the limit
    src.used = 39;
    await g.check('b'); // near the limit now: recounts, 39 + 1 fits
    expect(src.counts).toBe(2);
    src.used = 40;
    await expect(g.check('c')).rejects.toThrow(/network 'c': no inotify instance left .*40 of fs\.inotify/);
    src.used = 10; // some were freed: the next check counts again
    await g.check('d');
    expect(src.counts).toBe(4);
  });

  it('a supervisor refuses before running dnsmasq when no instance is left', async () => {
    const runner = new DryRunRunner();
    const sup = new DnsmasqSupervisor({
      name: 'full',
      confFile: '/nonexistent/full.conf',
      pidFile: join(tmpdir(), `vq-inotify-${process.pid}.pid`),
      leaseFile: '/nonexistent/full.leases',
      runner,
      inotify: new InotifyGuard(source(128, 128)),
    });
    await expect(sup.start()).rejects.toThrow(/network 'full': no inotify instance left/);
    expect(runner.calls).toEqual([]);
  });
});

const missing = missingPrereqs(['unshare', 'tail', 'sh']);

describe.skipIf(missing)('counted against the kernel (private user namespace, limit 3)', () => {
  it('three instances held: the count is 3, the guard refuses, and the kernel refuses a 4th', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vq-inotify-'));
    try {
      const watched = join(dir, 'f');
      writeFileSync(watched, '');
      const script = join(dir, 'count.mjs');
      writeFileSync(
        script,
        `import { countRootInotify, readInotifyLimit, InotifyGuard } from ${JSON.stringify(join(projectRoot, 'src/dnsmasq/inotify.ts'))};\n` +
          'const out = { count: await countRootInotify(), limit: await readInotifyLimit() };\n' +
          "try { await new InotifyGuard().check('x'); out.refused = ''; } catch (e) { out.refused = e.message; }\n" +
          'console.log(JSON.stringify(out));\n',
      );
      const sh = [
        'echo 3 > /proc/sys/user/max_inotify_instances',
        `for i in 1 2 3; do tail -f '${watched}' >/dev/null 2>&1 & done`,
        'sleep 0.5',
        `timeout 1 tail -f '${watched}' 2>&1 >/dev/null | head -1`,
        `${process.execPath} --import ${join(projectRoot, 'test/helpers/ts-register.mjs')} '${script}'`,
        'kill $(jobs -p) 2>/dev/null; exit 0',
      ].join('\n');
      const out = await new Promise<string>((resolve, reject) =>
        execFile('unshare', ['-Ur', '--fork', 'sh', '-c', sh], { timeout: 30_000 }, (e, stdout, stderr) =>
          e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(String(stdout)),
        ),
      );
      const lines = out.trim().split('\n');
      expect(lines[0]).toMatch(/inotify cannot be used.*Too many open files/); // the kernel's refusal
      const got = JSON.parse(lines[lines.length - 1] as string) as {
        count: number;
        limit: number;
        refused: string;
      };
      expect(got.limit).toBe(3);
      expect(got.count).toBe(3);
      expect(got.refused).toContain('3 of fs.inotify.max_user_instances=3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
