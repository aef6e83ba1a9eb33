import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DryRunRunner } from '../../src/exec/runner.js';
import { domainPortsOn, LibvirtUnreachable, parseInfo, Virsh } from '../../src/libvirt/virsh.js';
import { libvirtHooksDir, missingShared } from '../helpers/shared.js';

const noShared = missingShared(libvirtHooksDir);

describe('virsh adapter (pure parts and error mapping)', () => {
  it.skipIf(noShared)(
    'domainPortsOn reads the taps of a live domain on a network (real libvirt 9.0 domain XML)',
    () => {
      const xml = readFileSync(join(libvirtHooksDir, '06-qemu-start-begin.stdin.xml'), 'utf8');
      expect(domainPortsOn(xml, 'default')).toEqual([
        {
          domain: 'golden-vm',
          uuid: '720a1d5a-9c10-4ce5-8614-f1cfed9481be',
          ifname: 'vnet0',
          mac: '52:54:00:aa:bb:01',
        },
      ]);
      expect(domainPortsOn(xml, 'default')[0]!.domain).not.toBe('');
      expect(domainPortsOn(xml, 'other')).toEqual([]);
    },
  );

  it('parseInfo reads virsh net-info', () => {
    expect(
      parseInfo(
        'Name:           default\nUUID:           1b2c\nActive:         yes\nPersistent:     yes\nAutostart:      no\nBridge:         virbr0\n',
      ),
    ).toEqual({
      Name: 'default',
      UUID: '1b2c',
      Active: 'yes',
      Persistent: 'yes',
      Autostart: 'no',
      Bridge: 'virbr0',
    });
  });

  it('a network libvirt does not know is absent; a refused connection is LibvirtUnreachable', async () => {
    const runner = new DryRunRunner().respond((req) =>
      req.argv.includes('net-dumpxml')
        ? {
            exitCode: 1,
            stderr:
              "error: failed to get network 'x'\nerror: Network not found: no network with matching name 'x'\n",
          }
        : undefined,
    );
    expect(await new Virsh(runner, 'qemu:///system').network('x')).toEqual({
      active: false,
      autostart: false,
    });
    const down = new DryRunRunner().respond(() => ({
      exitCode: 1,
      stderr:
        "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/libvirt/libvirt-sock': No such file or directory\n",
    }));
    await expect(new Virsh(down, 'qemu:///system').network('x')).rejects.toBeInstanceOf(LibvirtUnreachable);
  });
});

describe('virsh ping', () => {
  it('a virsh that is missing, killed or fails counts as unreachable', async () => {
    for (const r of [
      new DryRunRunner().respond(() => {
        throw new Error('spawn virsh ENOENT');
      }),
      new DryRunRunner().respond(() => ({ exitCode: -1, stderr: '' })),
    ]) {
      await expect(new Virsh(r, 'qemu:///system').ping()).rejects.toBeInstanceOf(LibvirtUnreachable);
    }
    await expect(new Virsh(new DryRunRunner(), 'qemu:///system').ping()).resolves.toBeUndefined();
  });
});
