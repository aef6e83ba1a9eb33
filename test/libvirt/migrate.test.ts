import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import { LibvirtMigrator, type MigrateOps } from '../../src/libvirt/migrate.js';
import { silentLogger } from '../../src/util/log.js';

describe('import journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vh-journal-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Nothing but the journal is reached: any other call fails the test.
  const never = new Proxy({} as MigrateOps, {
    get: (_t, k) => () => {
      throw new Error(`ops.${String(k)} called`);
    },
  });
  const migrator = new LibvirtMigrator({
    ops: never,
    virsh: () => {
      throw new Error('virsh used');
    },
    defaultUri: 'qemu:///system',
    journalDir: dir,
    statusDir: dir,
    runner: new DryRunRunner(),
    publish: { hold() {}, release() {}, sync: async () => {}, status: () => 'published' },
    log: silentLogger(),
  });

  it.each([
    ['not JSON', '{"version": 1,', /journal: is not JSON/],
    [
      'another shape',
      JSON.stringify({ version: 1, name: 'default', original: '<network/>', leases: '' }),
      /journal: is not an import journal of this version/,
    ],
  ])(
    'a journal that is %s is refused, naming its file, and nothing else is touched',
    async (_l, text, msg) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'default.json'), text);
      const e = await migrator.revert('default', '').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ValidationError);
      expect(String((e as Error).message)).toMatch(msg);
      expect(String((e as Error).message)).toContain(join(dir, 'default.json'));
    },
  );
});
