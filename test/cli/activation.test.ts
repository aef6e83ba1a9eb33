/**
 * virtnetctl (the built program) on a private system bus where virtnetd is activatable but cannot
 * start (its Exec fails at once, or hangs): one clear line naming what failed and where to look,
 * exit code 1, within a few seconds instead of the bus's 25 s activation timeout.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUS_NAME, type PrivateBus, startPrivateBus } from '../helpers/dbus.js';
import { projectRoot } from '../helpers/shared.js';

describe('virtnetctl when bus activation of virtnetd fails or hangs', () => {
  const base = mkdtempSync(join(tmpdir(), 'vnet-ctlact-'));
  const buses: PrivateBus[] = [];
  afterAll(async () => {
    for (const b of buses) await b.stop();
    rmSync(base, { recursive: true, force: true });
  });

  for (const [label, exec, text] of [
    [
      'fails at once',
      '/bin/false',
      /virtnetd could not be started \(bus activation of org\.virtnet\.network1 failed: /,
    ],
    ['hangs', '/bin/sleep 300', /virtnetd did not start within 5 s/],
  ] as const) {
    it(`activation that ${label}: one line, exit 1, within 10 s`, async () => {
      const d = join(base, label.replace(/\W/g, '-'));
      mkdirSync(d);
      writeFileSync(
        join(d, `${BUS_NAME}.service`),
        `[D-BUS Service]\nName=${BUS_NAME}\nExec=${exec}\nUser=root\n`,
      );
      const bus = await startPrivateBus({ serviceDirs: [d] });
      buses.push(bus);
      const t0 = Date.now();
      const r = spawnSync(
        process.execPath,
        [join(projectRoot, 'dist', 'src', 'bin', 'virtnetctl.js'), 'list', '--bus', bus.address],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(text);
      expect(r.stderr).toMatch(/systemctl status virtnetd.*journalctl -u virtnetd/);
    });
  }
});
