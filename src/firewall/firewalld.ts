/**
 * firewalld zones for virtnet's bridges, through firewalld's D-Bus API (as libvirt does it).
 *
 * firewalld rejects DHCP, DNS and forwarding of an interface that is in no zone allowing them (its
 * default zone, usually `public`), whatever virtnet's own tables accept. So while firewalld runs, the
 * bridge of each NAT, routed or isolated network goes into a zone at start (runtime binding,
 * `changeZoneOfInterface`) and out of it at stop (`removeInterface`), when virtnet put it there:
 * - `<bridge zone='…'/>` when given (as libvirt: it must exist in firewalld);
 * - else `libvirt-routed` for a routed network and `libvirt` otherwise, when firewalld has them
 *   (libvirt's package ships them);
 * - else `virtnet`, the zone virtnet ships (packaging/firewalld/virtnet.xml: DHCP, DNS, TFTP, ICMP to
 *   the host, anything forwarded accepted — virtnet's own rules decide what is forwarded — and any
 *   other connection to the host rejected).
 * Bridge mode (a host bridge the admin owns) and open mode without an explicit zone get none.
 * `firewall-cmd --reload` drops runtime bindings and a restarted firewalld has none: on firewalld's
 * `Reloaded` signal and on its name getting a new owner (`NameOwnerChanged`) the engine binds every
 * network again (see LinuxEngine.rebindZones).
 */

import { type Message, type MessageBus, MessageType, Message as Msg } from '../bus/dbus.js';
import type { Network } from '../model/network.js';
import { unsafeIfname } from '../plan/firewall/safe.js';

export const FIREWALLD_NAME = 'org.fedoraproject.FirewallD1';
const FW_PATH = '/org/fedoraproject/FirewallD1';
const ZONE_IFACE = 'org.fedoraproject.FirewallD1.zone';

/** A bridge's zone as virtnet found or set it; `ours`: virtnet bound it (and unbinds it at stop). */
export interface ZoneBinding {
  ifname: string;
  zone: string;
  ours: boolean;
}

/** The zone a network's bridge belongs in, given firewalld's zones; undefined for none. Pure. */
export function chooseZone(
  net: Network,
  zones: readonly string[],
): { zone: string } | { error: string } | undefined {
  const mode = net.forward.mode;
  if (net.bridge.zone !== undefined) {
    if (!zones.includes(net.bridge.zone))
      return {
        error: `network/bridge@zone '${net.bridge.zone}': firewalld has no such zone (it has: ${zones.join(', ')})`,
      };
    return { zone: net.bridge.zone };
  }
  if (mode === 'bridge' || mode === 'open') return undefined;
  const libvirt = mode === 'route' ? 'libvirt-routed' : 'libvirt';
  if (zones.includes(libvirt)) return { zone: libvirt };
  if (zones.includes('virtnet')) return { zone: 'virtnet' };
  return {
    error: `firewalld has neither a '${libvirt}' nor a 'virtnet' zone for bridge ${net.bridge.name}: install virtnet's zone (/usr/lib/firewalld/zones/virtnet.xml) and run 'firewall-cmd --reload'`,
  };
}

export interface ZoneManager {
  /** Whether firewalld is on the bus now. */
  running(): Promise<boolean>;
  /** Put the network's bridge into its zone (no-op without firewalld, or when it needs none). */
  bind(net: Network, previous?: ZoneBinding): Promise<ZoneBinding | undefined>;
  /** Take the bridge out of the zone again when virtnet put it there. */
  unbind(b: ZoneBinding): Promise<void>;
  /** The zone `ifname` is in now ('' for none). */
  zoneOf(ifname: string): Promise<string>;
  /** Call `onChange` on firewalld's Reloaded and when its bus name gets a new owner. */
  watch(onChange: (why: string) => void): Promise<void>;
  close(): void;
}

export class FirewalldZones implements ZoneManager {
  private listener: ((m: Message) => void) | undefined;

  constructor(private readonly bus: MessageBus) {}

  private async call(
    destination: string,
    path: string,
    iface: string,
    member: string,
    signature = '',
    body: unknown[] = [],
  ): Promise<unknown[]> {
    const reply = await this.bus.call(
      new Msg({
        type: MessageType.METHOD_CALL,
        destination,
        path,
        interface: iface,
        member,
        signature,
        body,
      }),
    );
    return reply?.body ?? [];
  }

  private zoneCall(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call(FIREWALLD_NAME, FW_PATH, ZONE_IFACE, member, signature, body);
  }

  async running(): Promise<boolean> {
    const [has] = await this.call(
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'NameHasOwner',
      's',
      [FIREWALLD_NAME],
    );
    return has === true;
  }

  async bind(net: Network, previous?: ZoneBinding): Promise<ZoneBinding | undefined> {
    const ifname = net.bridge.name;
    if (!ifname || unsafeIfname(ifname)) return undefined;
    if (!(await this.running())) return undefined;
    const [zones] = (await this.zoneCall('getZones')) as [string[]];
    const choice = chooseZone(net, zones ?? []);
    if (!choice) return undefined;
    if ('error' in choice) throw new Error(`firewalld: ${choice.error}`);
    const [current] = (await this.zoneCall('getZoneOfInterface', 's', [ifname])) as [string];
    if (current === choice.zone) {
      // Already there: the admin's binding, unless virtnet made it before (a daemon restart).
      const ours = previous?.ours === true && previous.zone === choice.zone;
      return { ifname, zone: choice.zone, ours };
    }
    await this.zoneCall('changeZoneOfInterface', 'ss', [choice.zone, ifname]);
    return { ifname, zone: choice.zone, ours: true };
  }

  async zoneOf(ifname: string): Promise<string> {
    const [current] = (await this.zoneCall('getZoneOfInterface', 's', [ifname])) as [string];
    return current ?? '';
  }

  async unbind(b: ZoneBinding): Promise<void> {
    if (!b.ours || !(await this.running())) return;
    const [current] = (await this.zoneCall('getZoneOfInterface', 's', [b.ifname])) as [string];
    if (current !== b.zone) return; // someone moved it since: theirs now
    await this.zoneCall('removeInterface', 'ss', [b.zone, b.ifname]);
  }

  async watch(onChange: (why: string) => void): Promise<void> {
    const rules = [
      `type='signal',sender='${FIREWALLD_NAME}',path='${FW_PATH}',interface='${FIREWALLD_NAME}',member='Reloaded'`,
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${FIREWALLD_NAME}'`,
    ];
    for (const r of rules)
      await this.call(
        'org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus',
        'AddMatch',
        's',
        [r],
      );
    this.listener = (m: Message) => {
      if (m.type !== MessageType.SIGNAL) return;
      if (m.member === 'Reloaded' && m.interface === FIREWALLD_NAME) onChange('firewalld reloaded');
      else if (m.member === 'NameOwnerChanged' && m.body[0] === FIREWALLD_NAME && m.body[2])
        onChange('firewalld (re)started');
    };
    this.bus.on('message', this.listener);
  }

  close(): void {
    if (this.listener) this.bus.removeListener('message', this.listener as (...a: never[]) => void);
  }
}
