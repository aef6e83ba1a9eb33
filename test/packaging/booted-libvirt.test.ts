/**
 * The package next to real libvirt on a booted Debian 13: libvirtd (monolithic, as Debian ships it)
 * and QEMU are installed first, then the .deb with apt; the hooks the package installs are called by
 * the running libvirtd without the admin restarting it, and a TCG domain made with
 * `virt-install --pxe --network network=default` gets its lease from virtnet's dnsmasq.
 *
 * libvirt's own `default` network is moved to virtnet with `virtnetctl import-libvirt default` (the
 * README's "Migrating a libvirt network"): libvirt keeps a bridge-mode `default` over virtnet's virbr0. Inside nspawn the cgroup v1
 * controllers are read-only: qemu.conf gets `cgroup_controllers = [ ]`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BootedMachine, cachedRoot, run } from '../helpers/booted.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs([
  'mmdebstrap',
  'systemd-nspawn',
  'nsenter',
  'unshare',
  'dpkg-deb',
  'apt-get',
  'npm',
]);

const BASE = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'busybox',
  'procps',
  'libpam-systemd',
  'libvirt-daemon-system',
  'libvirt-clients',
  'qemu-system-x86',
  'ipxe-qemu',
  'virtinst',
];

describe.skipIf(skip)('the .deb with libvirt on a booted Debian 13', () => {
  let out: string;
  let deb: string;
  let m: BootedMachine | undefined;
  const measured = (what: string, value: string) =>
    console.log(`measured (trixie, libvirt): ${what}: ${value}`);

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'virtnet-booted-deb-'));
    const b = await run(['bash', join(projectRoot, 'packaging', 'build-deb.sh'), '--out', out], {
      timeout: 300_000,
    });
    if (b.code !== 0) throw new Error(`build-deb.sh failed: ${b.err}${b.out}`);
    deb = b.out.trim().split('\n').pop()!;
    const root = await cachedRoot({ release: 'trixie', include: BASE, download: [deb] }, (s) =>
      console.log(`trixie+libvirt: ${s}`),
    );
    m = await BootedMachine.boot(root, {
      [`/root/${basename(deb)}`]: readFileSync(deb),
    });
  }, 900_000);

  afterAll(async () => {
    await m?.stop();
    rmSync(out, { recursive: true, force: true });
  }, 60_000);

  it('a running libvirtd calls the installed hooks, a virt-install PXE domain leases from virtnet, and after a reboot virtnet is up before libvirtd', async () => {
    const fail = async (e: unknown) => {
      const j = (await m!.exec(['journalctl', '-b', '-o', 'short-monotonic', '--no-pager', '-n', '120'])).out;
      console.log(`the container's journal (last 120 lines):\n${j}`);
      throw e;
    };
    try {
      // libvirt as installed, with the one change nspawn needs; libvirtd running before virtnet exists.
      await m!.sh(
        [
          "printf 'cgroup_controllers = [ ]\\n' >> /etc/libvirt/qemu.conf",
          'systemctl restart libvirtd',
          'systemctl is-active libvirtd',
          'test ! -e /etc/libvirt/hooks/qemu.d/virtnet',
        ].join('\n'),
      );
      const libvirtdPid = (await m!.sh('systemctl show -p MainPID --value libvirtd')).trim();
      const inst = await m!.exec(['apt-get', 'install', '-y', '-q', `/root/${basename(deb)}`], {
        timeout: 300_000,
      });
      expect(inst.code, inst.out + inst.err).toBe(0);
      // The package restarted the running libvirtd (a new main pid) so it finds the hooks.
      expect((await m!.sh('systemctl show -p MainPID --value libvirtd')).trim()).not.toBe(libvirtdPid);
      await m!.sh('systemctl enable --now virtnetd');
      // libvirt's own 'default' (libvirt-daemon-config-network) moves to virtnet with the one
      // command the README gives; virtnetd runs virsh from inside its hardened unit.
      const lvAutostart = (await m!.sh("virsh net-info default | awk '/^Autostart:/ { print $2 }'")).trim();
      const uuid = (await m!.sh('virsh net-uuid default')).trim();
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
      const imp = await m!.exec(['virtnetctl', 'import-libvirt', 'default'], { timeout: 120_000 });
      expect(imp.code, imp.out + imp.err).toBe(0);
      // Running, and autostarted as libvirt had it.
      expect(await m!.sh('virtnetctl list')).toMatch(new RegExp(`^default\\s+yes\\s+${lvAutostart}\\s`, 'm'));
      const twin = await m!.sh('virsh net-dumpxml default');
      expect(twin).toContain("<forward mode='bridge'/>");
      expect(twin).toContain(uuid);
      expect(await m!.sh('virtnetctl dumpxml default')).toContain(uuid);
      const t0 = performance.now();
      const vi = await m!.exec(
        [
          'virt-install',
          '--name',
          'pxe1',
          '--virt-type',
          'qemu',
          '--memory',
          '96',
          '--vcpus',
          '1',
          '--pxe',
          '--disk',
          'none',
          '--osinfo',
          'generic',
          '--network',
          'network=default,mac=52:54:00:aa:bb:01',
          '--graphics',
          'none',
          '--noautoconsole',
        ],
        { timeout: 120_000 },
      );
      expect(vi.code, vi.out + vi.err).toBe(0);
      // The hooks ran (virtnet recorded the domain's port) and iPXE got a lease from virtnet's dnsmasq.
      const leased = await m!.sh(
        'i=0; until virtnetctl leases default | grep -qi 52:54:00:aa:bb:01; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done; virtnetctl leases default',
        120_000,
      );
      measured('virt-install → iPXE lease from virtnet', `${Math.round(performance.now() - t0)} ms`);
      expect(leased.toLowerCase()).toContain('52:54:00:aa:bb:01');
      // The hooks libvirtd ran (found without restarting it after the install) recorded the domain.
      const rec = await m!.sh('cat /run/virtnet/hooks/domains/*.json');
      expect(rec).toContain('"domain": "pxe1"');
      expect(rec.toLowerCase()).toContain('52:54:00:aa:bb:01');
      // After a reboot virtnet's network is up before libvirtd starts (the unit's Before=), and
      // libvirt's autostarted bridge-mode twin is active on it.
      // (The iPXE guest ignores ACPI: libvirt-guests would wait minutes for it at shutdown.)
      await m!.sh('virsh destroy pxe1');
      await m!.sh('virtnetctl autostart default');
      await m!.reboot();
      const mono = async (unit: string, prop: string) =>
        Number((await m!.sh(`systemctl show -p ${prop} --value ${unit}`)).trim());
      const ready = await mono('virtnetd', 'ActiveEnterTimestampMonotonic');
      const libvirtd = await mono('libvirtd', 'ExecMainStartTimestampMonotonic');
      expect(ready).toBeGreaterThan(0);
      expect(libvirtd).toBeGreaterThan(ready);
      expect(await m!.sh('virtnetctl list')).toMatch(/^default\s+yes\s+yes/m);
      expect(await m!.sh('virsh net-list --name')).toContain('default');
    } catch (e) {
      await fail(e);
    }
  }, 600_000);
});
