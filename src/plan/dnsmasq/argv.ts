/**
 * The command line virtnet starts dnsmasq with.
 *
 * libvirt runs `dnsmasq --conf-file=FILE --leasefile-ro --dhcp-script=…/libvirt_leaseshelper` and puts
 * everything else, pid-file included, into FILE. virtnet has no leases helper, and keeps the conf file
 * byte-identical to libvirt's unit-test output, so the options that only concern how virtnet runs this
 * one process go on the command line instead:
 *
 *   dnsmasq --conf-file=CONF --pid-file=PID --dhcp-leasefile=LEASES [--enable-dbus=NAME] [--user=USER]
 *           [--keep-in-foreground]
 *
 * - `--dhcp-leasefile`: dnsmasq keeps its own lease database (instead of libvirt's --leasefile-ro +
 *   helper script), so leases survive a dnsmasq restart and `Engine.leases()` reads that file.
 * - `--pid-file`: how the engine finds (and after a virtnetd restart, adopts) the process.
 * - `--enable-dbus=NAME` (optional, e.g. `uk.org.thekelleys.dnsmasq.virbr0`): lease signals
 *   (DhcpLeaseAdded/Updated/Deleted) instead of a script.
 * - `--user` (optional): without it dnsmasq drops to `nobody`, which still writes the lease file.
 * - By default dnsmasq daemonizes, as under libvirt: its first process exits only after the daemon has
 *   written the pid file, so "command exited 0, then read the pid file" is race-free, and the network
 *   keeps running when virtnetd stops or restarts. `foreground: true` adds `--keep-in-foreground` for
 *   callers (tests) that supervise the process themselves.
 * Command-line options are not repeated in the conf file (no `pid-file=` there unless a caller asks for
 * libvirt's production layout with `DnsmasqPaths.pidFile`; then do not pass it here as well).
 * No shell is involved: each element is one argv entry. Values are still checked: absolute paths
 * without control characters, a well-formed D-Bus name, a plain user name.
 */

import { ValidationError } from '../../errors.js';
import { hasControlChars } from '../../model/validators.js';

export interface DnsmasqArgvOptions {
  /** dnsmasq executable (default 'dnsmasq', looked up on PATH by the runner). */
  binary?: string;
  confFile: string;
  pidFile: string;
  leaseFile: string;
  /** Own this bus name and emit lease signals (`--enable-dbus=NAME`). */
  dbusName?: string;
  /** Run as this user after binding (`--user=USER`). */
  user?: string;
  /** Stay in the foreground (`--keep-in-foreground`) instead of daemonizing. */
  foreground?: boolean;
}

function checkPath(field: string, p: string): void {
  if (!p.startsWith('/')) throw ValidationError.one(field, p, 'must be an absolute path');
  if (hasControlChars(p)) throw ValidationError.one(field, p, 'must not contain control characters');
}

// D-Bus well-known name: ≥ 2 dot-separated elements of [A-Za-z0-9_-], not starting with a digit, ≤ 255.
const DBUS_NAME = /^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export function dnsmasqArgv(opts: DnsmasqArgvOptions): string[] {
  const binary = opts.binary ?? 'dnsmasq';
  if (binary === '' || binary.startsWith('-') || hasControlChars(binary)) {
    throw ValidationError.one('binary', binary, 'not a usable executable name');
  }
  checkPath('confFile', opts.confFile);
  checkPath('pidFile', opts.pidFile);
  checkPath('leaseFile', opts.leaseFile);
  const argv = [
    binary,
    `--conf-file=${opts.confFile}`,
    `--pid-file=${opts.pidFile}`,
    `--dhcp-leasefile=${opts.leaseFile}`,
  ];
  if (opts.dbusName !== undefined) {
    if (opts.dbusName.length > 255 || !DBUS_NAME.test(opts.dbusName)) {
      throw ValidationError.one('dbusName', opts.dbusName, 'not a D-Bus well-known name');
    }
    argv.push(`--enable-dbus=${opts.dbusName}`);
  }
  if (opts.user !== undefined) {
    if (!USER_NAME.test(opts.user)) throw ValidationError.one('user', opts.user, 'not a user name');
    argv.push(`--user=${opts.user}`);
  }
  if (opts.foreground) argv.push('--keep-in-foreground');
  return argv;
}
