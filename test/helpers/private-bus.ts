/**
 * A private system-type D-Bus for the demo and the tests: `dbus-daemon --config-file=FILE` with a config
 * written here: `<type>system</type>`, a unix socket in a fresh temp dir, Debian's system.conf default
 * policy (deny own/method calls by default, allow replies and signals, Monitoring for root), the
 * system's /usr/share/dbus-1/system.d policies (dnsmasq's among them) and virtnet's shipped policy
 * dbus/org.virtnet.network1.conf — so the bus behaves like the system bus, with virtnet's real policy.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package.js';

export interface PrivateBus {
  dir: string;
  socketPath: string;
  /** `unix:path=…` */
  address: string;
  configFile: string;
  pid: number;
  stop(): Promise<void>;
}

export interface PrivateBusOptions {
  /** Extra `<policy>…</policy>` XML put into the config (e.g. to let a test own a fake polkit). */
  extraPolicy?: string;
  /** Include /usr/share/dbus-1/system.d (default true). */
  systemPolicies?: boolean;
  /** Prefix of the temp dir holding the socket and config (default 'virtnet-bus-'). */
  tempPrefix?: string;
  /** Directories of activation `.service` files (`<servicedir>`), for tests of bus activation. */
  serviceDirs?: string[];
}

function busConfig(socketPath: string, opts: PrivateBusOptions): string {
  const shipped = join(packageRoot(), 'dbus', 'org.virtnet.network1.conf');
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socketPath}</listen>
  <auth>EXTERNAL</auth>
  ${(opts.serviceDirs ?? []).map((d) => `<servicedir>${d}</servicedir>`).join('\n  ')}
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  ${opts.extraPolicy ?? ''}
  ${opts.systemPolicies === false ? '' : '<includedir>/usr/share/dbus-1/system.d</includedir>'}
  <include>${shipped}</include>
</busconfig>
`;
}

/** Start a private system-type bus. */
export function startPrivateBus(opts: PrivateBusOptions = {}): Promise<PrivateBus> {
  const dir = mkdtempSync(join(tmpdir(), opts.tempPrefix ?? 'virtnet-bus-'));
  chmodSync(dir, 0o755); // unprivileged test callers must reach the socket
  const socketPath = join(dir, 'bus.sock');
  const configFile = join(dir, 'bus.conf');
  writeFileSync(configFile, busConfig(socketPath, opts));
  const child = spawn(
    'dbus-daemon',
    [`--config-file=${configFile}`, '--nofork', '--nopidfile', '--print-address=1'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  // Never leave a bus behind, even when the test process dies before stop().
  const onExit = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dbus-daemon did not start within 10 s: ${err}`));
    }, 10_000);
    child.stderr!.on('data', (d) => {
      err += String(d);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(new Error(`dbus-daemon exited (${code}): ${err}`));
    });
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const address = `unix:path=${socketPath}`;
      resolve({
        dir,
        socketPath,
        address,
        configFile,
        pid: child.pid!,
        stop: async () => {
          if (child.exitCode === null) {
            const gone = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
            if (child.exitCode === null) child.kill('SIGKILL');
          }
          rmSync(dir, { recursive: true, force: true });
        },
      });
    });
  });
}
