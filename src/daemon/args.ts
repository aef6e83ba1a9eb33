/**
 * virtnetd's command line. Pure: argv in, options (or a usage error, or help/version) out.
 */
import type { FirewallBackend } from '../model/values.js';
import { isLogLevel, type LogFormat, type LogLevel } from '../util/log.js';

export interface DaemonOptions {
  configDir: string;
  stateDir: string;
  runDir: string;
  /** 'system' or a D-Bus address. */
  bus: string;
  firewall: 'auto' | FirewallBackend;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** A running network whose config file is deleted: stays up as a transient network, or is stopped. */
  onFileRemoved: 'keep-running' | 'stop';
  /** libvirt connection URI networks are published to; 'none' turns publishing off. */
  libvirt: string;
  /** Where libvirt's dnsmasq writes `<bridge>.status` (leases carried over by ImportLibvirt). */
  libvirtStatusDir: string;
  /** FRR's vty socket directory for vtysh (spans in mode 'evpn'); unset: FRR's own default. */
  frrVtySocket?: string;
}

export type ParsedArgs =
  | { kind: 'run'; options: DaemonOptions }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'usage-error'; message: string };

export const DEFAULTS: DaemonOptions = {
  configDir: '/etc/virtnet/networks',
  stateDir: '/var/lib/virtnet',
  runDir: '/run/virtnet',
  bus: 'system',
  firewall: 'auto',
  logLevel: 'info',
  logFormat: 'text',
  onFileRemoved: 'keep-running',
  libvirt: 'qemu:///system',
  libvirtStatusDir: '/var/lib/libvirt/dnsmasq',
};

export const HELP = `Usage: virtnetd [OPTIONS]

The virtnet daemon: libvirt-style virtual networks (NAT, isolated, routed, bridged, open) served on
the system D-Bus as org.virtnet.network1.

On start it loads every *.xml in the config dir, adopts networks already up, starts the networks marked
autostart, owns the bus name and tells systemd it is ready. On SIGTERM/SIGINT it exits and leaves every
network up (guests keep their network); stop networks explicitly (virtnetctl stop NAME).

Options:
  --config-dir DIR       network definitions, one <name>.xml each; autostart links in DIR/autostart
                         (default ${DEFAULTS.configDir})
  --state-dir DIR        persistent state (default ${DEFAULTS.stateDir})
  --run-dir DIR          runtime files: dnsmasq configs, pid and lease files (default ${DEFAULTS.runDir})
  --bus system|ADDRESS   the bus to serve on: 'system' (DBUS_SYSTEM_BUS_ADDRESS, else
                         unix:path=/run/dbus/system_bus_socket) or a D-Bus address such as
                         unix:path=/tmp/bus.sock (default system)
  --firewall auto|nftables|iptables
                         firewall backend (default auto: nftables when nft works, else iptables)
  --log-level LEVEL      emerg, alert, crit, error, warning, notice, info, debug (default info)
  --log-format text|json log line format (default text; under journald lines carry <N> priorities)
  --on-file-removed keep-running|stop
                         what happens to a RUNNING network whose config file is deleted: it stays up
                         as a transient network until stopped (keep-running, the default: deleting a
                         file never cuts guests off), or it is stopped and undefined (stop)
  --libvirt URI|none     publish every network into libvirt at URI as a bridge-mode network of the
                         same name and UUID (virsh net-list, virt-manager and virt-install see it;
                         type='network' VMs land on virtnet's bridge); 'none' turns this off
                         (default ${DEFAULTS.libvirt}; libvirt down: published when it comes up)
  --libvirt-status-dir DIR
                         libvirt's dnsmasq status files, read by import-libvirt to carry the
                         leases over (default ${DEFAULTS.libvirtStatusDir})
  --frr-vty-socket DIR   FRR's vty socket directory, passed to vtysh --vty_socket (an FRR run with
                         its own paths; default: FRR's own) — spans in mode 'evpn' only
  -h, --help             show this help
  -V, --version          print the version

Signals: SIGTERM/SIGINT exit (networks stay up), SIGHUP re-reads the config dir.

Environment: DBUS_SYSTEM_BUS_ADDRESS, NOTIFY_SOCKET / WATCHDOG_USEC (systemd), JOURNAL_STREAM (journald:
<N> priority prefixes, no timestamps).

Examples:
  virtnetd                                   as systemd runs it (systemctl enable --now virtnetd)
  virtnetd --log-level debug --log-format json
  virtnetd --bus unix:path=/tmp/test-bus.sock --config-dir /tmp/nets --run-dir /tmp/run --state-dir /tmp/state
`;

export function parseDaemonArgs(argv: readonly string[]): ParsedArgs {
  const o: DaemonOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (raw === '-h' || raw === '--help') return { kind: 'help' };
    if (raw === '-V' || raw === '--version') return { kind: 'version' };
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    let value: string | undefined;
    const takeValue = (): string | undefined => {
      if (raw.startsWith('--') && eq > 0) return raw.slice(eq + 1);
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return undefined;
      i++;
      return v;
    };
    switch (flag) {
      case '--config-dir':
      case '--state-dir':
      case '--run-dir':
      case '--bus':
      case '--firewall':
      case '--log-level':
      case '--log-format':
      case '--on-file-removed':
      case '--libvirt':
      case '--libvirt-status-dir':
      case '--frr-vty-socket':
        value = takeValue();
        if (value === undefined || value === '')
          return { kind: 'usage-error', message: `${flag} needs a value` };
        break;
      default:
        return { kind: 'usage-error', message: `unknown option '${raw}'` };
    }
    switch (flag) {
      case '--config-dir':
        o.configDir = value;
        break;
      case '--state-dir':
        o.stateDir = value;
        break;
      case '--run-dir':
        o.runDir = value;
        break;
      case '--bus':
        if (value !== 'system' && !/^[a-z]+:/.test(value)) {
          return {
            kind: 'usage-error',
            message: `--bus expects 'system' or a D-Bus address (got '${value}')`,
          };
        }
        o.bus = value;
        break;
      case '--firewall':
        if (value !== 'auto' && value !== 'nftables' && value !== 'iptables') {
          return {
            kind: 'usage-error',
            message: `--firewall expects auto, nftables or iptables (got '${value}')`,
          };
        }
        o.firewall = value;
        break;
      case '--log-level':
        if (!isLogLevel(value)) {
          return {
            kind: 'usage-error',
            message: `--log-level expects emerg, alert, crit, error, warning, notice, info or debug (got '${value}')`,
          };
        }
        o.logLevel = value;
        break;
      case '--log-format':
        if (value !== 'text' && value !== 'json') {
          return { kind: 'usage-error', message: `--log-format expects text or json (got '${value}')` };
        }
        o.logFormat = value;
        break;
      case '--on-file-removed':
        if (value !== 'keep-running' && value !== 'stop') {
          return {
            kind: 'usage-error',
            message: `--on-file-removed expects keep-running or stop (got '${value}')`,
          };
        }
        o.onFileRemoved = value;
        break;
      case '--libvirt':
        if (value !== 'none' && !/^[a-z][a-z0-9+.-]*:\/\//.test(value)) {
          return {
            kind: 'usage-error',
            message: `--libvirt expects a libvirt URI such as qemu:///system, or none (got '${value}')`,
          };
        }
        o.libvirt = value;
        break;
      case '--libvirt-status-dir':
        o.libvirtStatusDir = value;
        break;
      case '--frr-vty-socket':
        o.frrVtySocket = value;
        break;
    }
  }
  return { kind: 'run', options: o };
}
