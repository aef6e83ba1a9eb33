/**
 * Debian's libvirtd sealed in a test's namespaces, as ../shared/notes/lab-facts.md describes: it runs
 * inside the test's netns and a private mount namespace (`unshare -m --propagation private`) where
 *   - /etc/libvirt is a copy of the test's own (hooks/qemu.d, hooks/network.d, a qemu.conf with
 *     user/group root, no security driver; no networks/autostart, so libvirt's `default` stays down),
 *   - /run (tmpfs), /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt are the
 *     test's directories,
 *   - /etc/passwd and /etc/group are copies that contain the `libvirt-qemu` user and group (libvirtd
 *     9.0 refuses to start without them; libvirt-daemon-system normally makes them),
 *   - /run/dbus/system_bus_socket is the test's private bus (hooks then find "the system bus").
 * It is reached from outside with `virsh -c qemu+unix:///system?socket=<dir>/run/libvirt-sock`.
 *
 * Host changes: none, except that /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt are created
 * as empty mount points when the package left them out (removed again by `stop()`). libvirtd (and any
 * QEMU or dnsmasq it started) ends with the caller's netns cleanup (every pid of the netns); call
 * `stop()` after that.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ExecOut, execOut } from './dbus.js';
import type { PrivateBus } from './private-bus.js';

/** What the sealed libvirtd needs on this machine. */
export const LIBVIRT_TOOLS = ['ip', 'unshare', 'libvirtd', 'virsh'];
/** What a test with the sealed libvirtd, virtnetd on a private bus and a real network needs. */
export const LIBVIRT_VIRTNET_TOOLS = [...LIBVIRT_TOOLS, 'dbus-daemon', 'busctl', 'dnsmasq', 'nft'];
/** … and a QEMU TCG domain. */
export const LIBVIRT_VM_TOOLS = [...LIBVIRT_VIRTNET_TOOLS, 'qemu-system-x86_64'];

const MOUNTPOINTS = ['/var/lib/libvirt', '/var/log/libvirt', '/var/cache/libvirt'];

export interface SealedLibvirtOptions {
  /** Name of the netns libvirtd runs in (made and cleaned up by the caller). */
  netns: string;
  /** A directory of the caller's (e.g. under mktemp -d); libvirt's world goes to `<dir>/libvirt`. */
  dir: string;
  /** The private bus bound at /run/dbus/system_bus_socket in libvirt's mount namespace. */
  bus: PrivateBus;
  /** Hook programs linked as /etc/libvirt/hooks/qemu.d/virtnet and network.d/virtnet. */
  hooks?: { qemu?: string; network?: string };
  /**
   * libvirtd.conf's `host_uuid` (default: libvirt's own, from SMBIOS or the machine). Two sealed
   * libvirtds that migrate between each other need different ones: libvirt refuses to migrate to
   * "the same host".
   */
  hostUuid?: string;
  /**
   * A virtnetd run dir bound at /run/virtnet in libvirt's mount namespace, as in production: the
   * hooks then find the daemon's daemon.busname and hook records there.
   */
  virtnetRunDir?: string;
  /** How long to wait for `virsh version` to answer (default 10 s). */
  readyTimeoutMs?: number;
}

export interface SealedLibvirt {
  /** The directory holding libvirt's etc/run/lib/log/cache. */
  root: string;
  uri: string;
  /** `virsh -c URI ARGS` (never throws for a non-zero exit). */
  virsh(...args: string[]): Promise<ExecOut>;
  /** The tail of libvirtd's log file. */
  log(chars?: number): string;
  /** Remove the mount points this made on the host; call after the caller's netns cleanup ended libvirtd. */
  stop(): void;
}

/** Start libvirtd sealed in `netns` and a mount namespace of its own; resolves once virsh answers. */
export async function startSealedLibvirtd(o: SealedLibvirtOptions): Promise<SealedLibvirt> {
  const lv = join(o.dir, 'libvirt');
  for (const d of [
    'etc/hooks/qemu.d',
    'etc/hooks/network.d',
    'etc/qemu/networks',
    'run',
    'lib',
    'log',
    'cache',
  ])
    mkdirSync(join(lv, d), { recursive: true });
  if (o.hooks?.qemu) symlinkSync(o.hooks.qemu, join(lv, 'etc/hooks/qemu.d/virtnet'));
  if (o.hooks?.network) symlinkSync(o.hooks.network, join(lv, 'etc/hooks/network.d/virtnet'));
  writeFileSync(
    join(lv, 'etc/qemu.conf'),
    'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\nnamespaces = [ ]\n',
  );
  writeFileSync(
    join(lv, 'libvirtd.conf'),
    `auth_unix_rw = "none"\nauth_unix_ro = "none"\nunix_sock_rw_perms = "0770"\nlog_outputs = "2:file:${lv}/libvirtd.log"\n${o.hostUuid ? `host_uuid = "${o.hostUuid}"\n` : ''}`,
  );
  let passwd = readFileSync('/etc/passwd', 'utf8');
  let group = readFileSync('/etc/group', 'utf8');
  if (!/^libvirt-qemu:/m.test(passwd))
    passwd += 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n';
  if (!/^libvirt-qemu:/m.test(group)) group += 'libvirt-qemu:x:64055:\n';
  if (!/^kvm:/m.test(group)) group += 'kvm:x:64056:\n';
  writeFileSync(join(lv, 'passwd'), passwd);
  writeFileSync(join(lv, 'group'), group);
  if (o.virtnetRunDir) mkdirSync(o.virtnetRunDir, { recursive: true });
  const made: string[] = [];
  for (const m of MOUNTPOINTS)
    if (!existsSync(m)) {
      mkdirSync(m, { recursive: true });
      made.push(m);
    }
  const script = `#!/bin/sh
set -e
mount --bind ${lv}/etc /etc/libvirt
mount -t tmpfs tmpfs /run
mkdir -p /run/libvirt /run/dbus
mount --bind ${lv}/run /run/libvirt
${o.virtnetRunDir ? `mkdir -p /run/virtnet\nmount --bind ${o.virtnetRunDir} /run/virtnet\n` : ''}touch /run/dbus/system_bus_socket
mount --bind ${o.bus.socketPath} /run/dbus/system_bus_socket
mount --bind ${lv}/lib /var/lib/libvirt
mount --bind ${lv}/log /var/log/libvirt
mount --bind ${lv}/cache /var/cache/libvirt
mount --bind ${lv}/passwd /etc/passwd
mount --bind ${lv}/group /etc/group
exec libvirtd -f ${lv}/libvirtd.conf
`;
  writeFileSync(join(lv, 'launch.sh'), script, { mode: 0o755 });
  // libvirtd lives in the netns (ip netns pids finds it for the cleanup) and its own mount namespace.
  const child = spawn(
    'ip',
    ['netns', 'exec', o.netns, 'unshare', '-m', '--propagation', 'private', join(lv, 'launch.sh')],
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  const uri = `qemu+unix:///system?socket=${lv}/run/libvirt-sock`;
  const virsh = (...args: string[]) => execOut(['virsh', '-c', uri, ...args], { timeoutMs: 60_000 });
  const log = (chars = 3000) => {
    try {
      return readFileSync(join(lv, 'libvirtd.log'), 'utf8').slice(-chars);
    } catch {
      return '';
    }
  };
  const stop = () => {
    for (const m of made) {
      try {
        rmdirSync(m);
      } catch {}
    }
    made.length = 0;
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 10_000);
  for (;;) {
    const v = await virsh('version');
    if (v.code === 0) break;
    if (Date.now() > deadline) {
      stop();
      throw new Error(`sealed libvirtd did not answer: ${v.stderr}\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { root: lv, uri, virsh, log, stop };
}
