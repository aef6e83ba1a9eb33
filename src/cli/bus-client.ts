/**
 * virtnetctl's client of the org.virtnet.network1 bus API. Connects to the system bus (or `--bus
 * ADDRESS`, or DBUS_SYSTEM_BUS_ADDRESS), calls the daemon and turns every D-Bus error into one clear
 * line: a `BusCallError` whose message is the daemon's text and whose `type` is the D-Bus error name
 * (exit-codes.ts maps NotFound → 3, AccessDenied → 4).
 */
import { BUS_NAME, MANAGER_INTERFACE, NETWORK_INTERFACE } from '../bus/api.js';
import {
  callMethod,
  connectBus,
  isDBusError,
  type Message,
  type MessageBus,
  MessageType,
  resolveBusAddress,
} from '../bus/dbus.js';
import { MANAGER_PATH, networkNameFromPath } from '../bus/path-encode.js';
import { withTimeout } from '../util/timeout.js';

/** A failed call, as one line; `type` is the D-Bus error name. */
export class BusCallError extends Error {
  override readonly name = 'BusCallError';
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface NetworkInfo {
  name: string;
  path: string;
  uuid: string;
  active: boolean;
  autostart: boolean;
  bridge: string;
  forwardMode: string;
  /** The Libvirt property: published, off, pending: …, foreign: …. */
  libvirt: string;
  /** The Span property: '' unless the network spans hosts. */
  span: string;
}

export interface LeaseInfo {
  mac: string;
  ip: string;
  hostname: string;
  /** Unix seconds; 0 = infinite. */
  expiry: number;
}

/** A lease and the libvirt domain that owns its MAC ('' when unknown). */
export interface DomainLeaseInfo extends LeaseInfo {
  domain: string;
}

/** One signal from the daemon, decoded. */
export interface DaemonSignal {
  member: string;
  interface: string;
  path: string;
  /** The network the signal is about (from the path or the arguments), when there is one. */
  network?: string;
  args: unknown[];
}

/** Plain JS values from dbus-next's decoded body (Variants unwrapped, bigints as numbers). */
export function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('signature' in o && 'value' in o && Object.keys(o).length === 2) return plain(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

function friendly(e: unknown, address: string): BusCallError {
  if (isDBusError(e)) {
    if (
      e.type === 'org.freedesktop.DBus.Error.ServiceUnknown' ||
      e.type === 'org.freedesktop.DBus.Error.NameHasNoOwner'
    ) {
      return new BusCallError(
        e.type,
        `virtnetd is not running on ${address} (nobody owns ${BUS_NAME}); start virtnetd.service`,
      );
    }
    if (e.type === 'org.freedesktop.DBus.Error.AccessDenied') {
      return new BusCallError(e.type, `the bus refused the call: ${e.text}`);
    }
    return new BusCallError(e.type, e.text || e.type);
  }
  return new BusCallError('org.virtnet.network1.Error.Failed', e instanceof Error ? e.message : String(e));
}

/** How long a bus command waits for virtnetd to be started by bus activation. */
const ACTIVATION_MS = 5000;

export class VirtnetClient {
  private constructor(
    readonly bus: MessageBus,
    readonly address: string,
  ) {}

  /** Connect to `busOption` ('system' or an address; default from the environment). */
  static async connect(env: Record<string, string | undefined>, busOption?: string): Promise<VirtnetClient> {
    const address = resolveBusAddress(busOption ?? 'system', env as NodeJS.ProcessEnv);
    try {
      return new VirtnetClient(await connectBus(address, 5000), address);
    } catch (e) {
      throw new BusCallError(
        'org.freedesktop.DBus.Error.NoServer',
        `cannot connect to the bus at ${address}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  close(): void {
    try {
      this.bus.disconnect();
    } catch {}
  }

  async call(
    path: string,
    iface: string,
    member: string,
    signature = '',
    body: unknown[] = [],
    opts: { interactive?: boolean } = {},
  ): Promise<unknown[]> {
    await this.ensureDaemon();
    try {
      return await callMethod(this.bus, {
        destination: BUS_NAME,
        path,
        interface: iface,
        member,
        signature,
        body,
        // Let polkit ask for a password when a person runs virtnetctl (like busctl's default).
        flags: opts.interactive === false ? 0 : 4,
      });
    } catch (e) {
      throw friendly(e, this.address);
    }
  }

  private daemonUp = false;

  /**
   * Before the first call: when no one owns the name, start the daemon by bus activation, bounded by
   * ACTIVATION_MS. The bus itself waits 25 s for a daemon that cannot start (a unit systemd keeps
   * restarting); a person gets one clear line after a few seconds instead. A daemon that can start
   * is activated exactly as before (no extra wait on the success path).
   */
  private async ensureDaemon(): Promise<void> {
    if (this.daemonUp) return;
    const driver = {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      signature: 's',
      body: [BUS_NAME],
    };
    const hint = 'see `systemctl status virtnetd` and `journalctl -u virtnetd`';
    try {
      const [owned] = await callMethod(this.bus, { ...driver, member: 'NameHasOwner' });
      if (owned !== true) {
        await withTimeout(
          callMethod(this.bus, {
            ...driver,
            signature: 'su',
            body: [BUS_NAME, 0],
            member: 'StartServiceByName',
          }),
          ACTIVATION_MS,
          () => {
            throw new BusCallError(
              'org.virtnet.network1.Error.DaemonUnavailable',
              `virtnetd did not start within ${ACTIVATION_MS / 1000} s (bus activation of ${BUS_NAME} on ${this.address}); ${hint}`,
            );
          },
        );
      }
    } catch (e) {
      if (e instanceof BusCallError) throw e;
      if (isDBusError(e) && e.type !== 'org.freedesktop.DBus.Error.ServiceUnknown') {
        throw new BusCallError(
          'org.virtnet.network1.Error.DaemonUnavailable',
          `virtnetd could not be started (bus activation of ${BUS_NAME} failed: ${e.type}: ${e.text}); ${hint}`,
        );
      }
      throw friendly(e, this.address);
    }
    this.daemonUp = true;
  }

  async listPaths(): Promise<string[]> {
    const [paths] = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListNetworks');
    return paths as string[];
  }

  async pathOf(name: string): Promise<string> {
    const [path] = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'GetNetworkByName', 's', [name]);
    return path as string;
  }

  async info(path: string): Promise<NetworkInfo> {
    const [all] = await this.call(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', [
      NETWORK_INTERFACE,
    ]);
    const p = plain(all) as Record<string, unknown>;
    return {
      name: String(p.Name),
      path,
      uuid: String(p.UUID),
      active: p.Active === true,
      autostart: p.Autostart === true,
      bridge: String(p.Bridge ?? ''),
      forwardMode: String(p.ForwardMode ?? ''),
      libvirt: String(p.Libvirt ?? ''),
      span: String(p.Span ?? ''),
    };
  }

  async list(): Promise<NetworkInfo[]> {
    const paths = await this.listPaths();
    const out: NetworkInfo[] = [];
    for (const p of paths) {
      try {
        out.push(await this.info(p));
      } catch (e) {
        if (!(e instanceof BusCallError && e.type.endsWith('.NotFound'))) throw e; // undefined meanwhile
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async define(xml: string): Promise<string> {
    const [path] = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'DefineNetwork', 's', [xml]);
    return path as string;
  }

  async network(name: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    const path = await this.pathOf(name);
    return this.call(path, NETWORK_INTERFACE, member, signature, body);
  }

  /** GetSpanPeers: the other hosts of a running spanning network ([] otherwise). */
  async spanPeers(name: string): Promise<{ address: string; role: string; state: string; macs: string[] }[]> {
    const [rows] = await this.network(name, 'GetSpanPeers');
    return (plain(rows) as [string, string, string, string[]][]).map(([address, role, state, macs]) => ({
      address,
      role,
      state,
      macs,
    }));
  }

  async leases(name: string): Promise<LeaseInfo[]> {
    const [rows] = await this.network(name, 'GetLeases');
    return (plain(rows) as [string, string, string, number][]).map(([mac, ip, hostname, expiry]) => ({
      mac,
      ip,
      hostname,
      expiry,
    }));
  }

  /**
   * GetLeasesWithDomains: the leases with their owner domains (the daemon reads its hook records).
   * Undefined when the daemon predates the method (UnknownMethod).
   */
  async leasesWithDomains(name: string): Promise<DomainLeaseInfo[] | undefined> {
    let rows: unknown;
    try {
      [rows] = await this.network(name, 'GetLeasesWithDomains');
    } catch (e) {
      if (e instanceof BusCallError && e.type === 'org.freedesktop.DBus.Error.UnknownMethod')
        return undefined;
      throw e;
    }
    return (plain(rows) as [string, string, string, number, string][]).map(
      ([mac, ip, hostname, expiry, domain]) => ({ mac, ip, hostname, expiry, domain }),
    );
  }

  /** Receive every signal the daemon emits until `stop()` is called. */
  async subscribe(onSignal: (s: DaemonSignal) => void): Promise<{ stop(): Promise<void> }> {
    const rule = `type='signal',sender='${BUS_NAME}'`;
    const handler = (msg: Message) => {
      if (msg.type !== MessageType.SIGNAL || !msg.member || !msg.path) return;
      const args = plain(msg.body ?? []) as unknown[];
      let network = networkNameFromPath(msg.path);
      if (msg.member === 'NetworkEvent') network = String(args[0]);
      if (msg.member === 'InterfacesAdded' || msg.member === 'InterfacesRemoved') {
        network = networkNameFromPath(String(args[0]));
      }
      onSignal({
        member: msg.member,
        interface: msg.interface ?? '',
        path: msg.path,
        ...(network !== undefined ? { network } : {}),
        args,
      });
    };
    this.bus.on('message', handler);
    const busDriver = {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      signature: 's',
      body: [rule],
    };
    await callMethod(this.bus, { ...busDriver, member: 'AddMatch' });
    return {
      stop: async () => {
        this.bus.removeListener('message', handler as (...args: never[]) => void);
        try {
          await callMethod(this.bus, { ...busDriver, member: 'RemoveMatch' });
        } catch {}
      },
    };
  }
}
