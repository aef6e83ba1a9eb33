/**
 * Packaging: packaging/install.sh puts every file where the README says (and uninstall takes them
 * away), the systemd unit passes `systemd-analyze verify`, and `npm run package:deb`'s builder makes a
 * .deb with the right metadata that installs into a throwaway root (dpkg --root) and runs from there.
 * Needs a built tree (npm test builds first).
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(['dpkg', 'dpkg-deb', 'systemd-analyze', 'npm']);
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

function sh(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

/** The files the README's layout promises, relative to prefix / sysconfdir. */
function promised(prefix: string, etc: string): string[] {
  return [
    `${prefix}/bin/virtnetd`,
    `${prefix}/bin/virtnetctl`,
    `${prefix}/lib/virtnet/dist/src/bin/virtnetd.js`,
    `${prefix}/lib/virtnet/dist/src/hooks/main.js`,
    `${prefix}/lib/virtnet/hooks/qemu`,
    `${prefix}/lib/virtnet/hooks/network`,
    `${etc}/libvirt/hooks/qemu.d/virtnet`,
    `${etc}/libvirt/hooks/network.d/virtnet`,
    `${etc}/virtnet/networks/default.xml`,
    `${prefix}/share/dbus-1/system.d/org.virtnet.network1.conf`,
    `${prefix}/share/dbus-1/system-services/org.virtnet.network1.service`,
    `${prefix}/share/dbus-1/interfaces/org.virtnet.network1.Manager.xml`,
    `${prefix}/share/dbus-1/interfaces/org.virtnet.network1.Network.xml`,
    `${prefix}/share/polkit-1/actions/org.virtnet.network1.policy`,
    `${prefix}/lib/sysctl.d/60-virtnet.conf`,
    `${prefix}/lib/systemd/system/virtnetd.service`,
    `${prefix}/share/virtnet/networks/default.xml`,
    `${prefix}/share/doc/virtnet/README.md`,
  ];
}

describe.skipIf(skip)('packaging', () => {
  it('install.sh installs into a prefix, the unit verifies, uninstall removes it', async () => {
    const t = tmp('virtnet-inst-');
    const prefix = join(t, 'usr');
    const etc = join(t, 'etc');
    const r = await sh([
      join(projectRoot, 'packaging', 'install.sh'),
      '--prefix',
      prefix,
      '--sysconfdir',
      etc,
      '--no-node-modules',
    ]);
    expect(r.code, r.out).toBe(0);
    for (const f of promised(prefix, etc)) expect(existsSync(f), f).toBe(true);
    expect(readlinkSync(join(etc, 'libvirt/hooks/qemu.d/virtnet'))).toBe(`${prefix}/lib/virtnet/hooks/qemu`);
    expect(statSync(join(prefix, 'lib/virtnet/hooks/network')).mode & 0o111).not.toBe(0);
    const unit = readFileSync(join(prefix, 'lib/systemd/system/virtnetd.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${prefix}/bin/virtnetd --config-dir ${etc}/virtnet/networks`);
    // Publishing into libvirt is settable with a drop-in (Environment=VIRTNETD_LIBVIRT=none).
    expect(unit).toContain('Environment=VIRTNETD_LIBVIRT=qemu:///system');
    expect(unit).toMatch(/^ExecStart=.* --libvirt \$\{VIRTNETD_LIBVIRT\}$/m);
    for (const want of [
      'Type=notify',
      'BusName=org.virtnet.network1',
      'KillMode=process',
      'ProtectSystem=strict',
      'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6',
      'Before=libvirtd.service virtqemud.service',
      'After=nftables.service firewalld.service ufw.service netfilter-persistent.service',
      'Before=docker.service',
    ]) {
      expect(unit).toContain(want);
    }
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE/m);
    const v = await sh(['systemd-analyze', 'verify', join(prefix, 'lib/systemd/system/virtnetd.service')]);
    expect(v.code, v.out).toBe(0);
    expect(v.out.trim(), v.out).toBe('');
    const activation = readFileSync(
      join(prefix, 'share/dbus-1/system-services/org.virtnet.network1.service'),
      'utf8',
    );
    expect(activation).toContain('SystemdService=virtnetd.service');

    const u = await sh([
      join(projectRoot, 'packaging', 'install.sh'),
      '--prefix',
      prefix,
      '--sysconfdir',
      etc,
      '--uninstall',
    ]);
    expect(u.code, u.out).toBe(0);
    for (const f of promised(prefix, etc).filter((p) => !p.startsWith(`${etc}/virtnet/`))) {
      expect(existsSync(f) || isLink(f), f).toBe(false);
    }
    // The admin's network definitions stay.
    expect(existsSync(join(etc, 'virtnet/networks/default.xml'))).toBe(true);
  }, 120_000);

  it('builds a .deb that installs into a throwaway root and runs from there', async () => {
    const out = tmp('virtnet-deb-');
    const b = await sh(['bash', join(projectRoot, 'packaging', 'build-deb.sh'), '--out', out]);
    expect(b.code, b.out).toBe(0);
    const deb = b.out.trim().split('\n').pop()!;
    expect(deb).toMatch(/virtnet_\d+\.\d+\.\d+_\w+\.deb$/);

    const info = await sh(['dpkg-deb', '-f', deb, 'Package', 'Depends']);
    expect(info.out).toContain('Package: virtnet');
    expect(info.out).toContain(
      'Depends: nodejs (>= 18.19), dnsmasq-base, iproute2, nftables | iptables, dbus',
    );
    const ctrl = tmp('virtnet-ctrl-');
    expect((await sh(['dpkg-deb', '-e', deb, ctrl])).code).toBe(0);
    expect(readFileSync(join(ctrl, 'conffiles'), 'utf8')).toContain('/etc/virtnet/networks/default.xml');
    for (const s of ['postinst', 'prerm', 'postrm']) expect(statSync(join(ctrl, s)).mode & 0o111).not.toBe(0);
    // Upgrades never stop networks: prerm does nothing on upgrade, postinst only try-restarts the daemon.
    expect(readFileSync(join(ctrl, 'prerm'), 'utf8')).toMatch(/remove\|deconfigure\)/);
    expect(readFileSync(join(ctrl, 'postinst'), 'utf8')).toContain('try-restart virtnetd.service');

    const root = tmp('virtnet-root-');
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), ''); // an empty dpkg database
    const dpkg = [
      'dpkg',
      `--root=${root}`,
      '--force-depends',
      '--force-script-chrootless',
      '--log=/dev/null',
    ];
    const i = await sh([...dpkg, '-i', deb]);
    expect(i.code, i.out).toBe(0);
    for (const f of promised(`${root}/usr`, `${root}/etc`)) expect(existsSync(f) || isLink(f), f).toBe(true);
    const listed = await sh([...dpkg.slice(0, 2), '-L', 'virtnet']);
    expect(listed.out).toContain('/usr/lib/systemd/system/virtnetd.service');
    // The installed program runs (its production node_modules are in the package).
    const ver = await sh([
      process.execPath,
      join(root, 'usr/lib/virtnet/dist/src/bin/virtnetctl.js'),
      '--version',
    ]);
    expect(ver.code, ver.out).toBe(0);
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    expect(ver.out).toContain(pkg.version);
    const val = await sh([
      process.execPath,
      join(root, 'usr/lib/virtnet/dist/src/bin/virtnetctl.js'),
      'validate',
      join(root, 'etc/virtnet/networks/default.xml'),
    ]);
    expect(val.code, val.out).toBe(0);

    const p = await sh([...dpkg, '--purge', 'virtnet']);
    expect(p.code, p.out).toBe(0);
    expect(existsSync(join(root, 'usr/lib/virtnet'))).toBe(false);
    expect(existsSync(join(root, 'usr/lib/systemd/system/virtnetd.service'))).toBe(false);
  }, 300_000);
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
