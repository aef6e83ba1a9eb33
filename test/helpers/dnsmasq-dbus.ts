/**
 * dnsmasq's own lease signals on D-Bus. Started with `--enable-dbus=uk.org.thekelleys.dnsmasq.<bridge>`,
 * dnsmasq owns that name and emits DhcpLeaseAdded / DhcpLeaseUpdated / DhcpLeaseDeleted (ip, mac,
 * hostname) on the object path /uk/org/thekelleys/dnsmasq, with the custom name as the signal's
 * interface. The match rule is therefore on the path; the interface tells the networks apart.
 *
 * Test instrument: virtnetd itself follows leases through the lease file (src/dnsmasq/lease-watch.ts,
 * which works with or without a bus); these signals are what other programs on the system bus see, and
 * the integration tests use this listener to check that they are announced.
 */
import { EventEmitter } from 'node:events';
import { callMethod, type Message, type MessageBus, MessageType } from '../../src/bus/dbus.js';
import type { LeaseChange, LeaseEvent } from '../../src/dnsmasq/leases.js';

export const DNSMASQ_DBUS_PATH = '/uk/org/thekelleys/dnsmasq';
export const DNSMASQ_DBUS_MATCH = `type='signal',path='${DNSMASQ_DBUS_PATH}'`;

/** The bus name virtnet gives the dnsmasq of a bridge (libvirt's convention for the service name). */
export function dnsmasqDbusName(bridge: string): string {
  return `uk.org.thekelleys.dnsmasq.${bridge}`;
}

const MEMBERS: Record<string, LeaseEvent> = {
  DhcpLeaseAdded: 'added',
  DhcpLeaseUpdated: 'updated',
  DhcpLeaseDeleted: 'deleted',
};

export interface DbusLeaseChange extends LeaseChange {
  /** The signal's interface: the dnsmasq's custom bus name. */
  dbusName: string;
}

/** The lease change a message carries, or undefined when it is not a dnsmasq lease signal. */
export function leaseChangeFromMessage(msg: Message): DbusLeaseChange | undefined {
  if (msg.type !== MessageType.SIGNAL || msg.path !== DNSMASQ_DBUS_PATH) return undefined;
  const event = msg.member ? MEMBERS[msg.member] : undefined;
  if (!event) return undefined;
  const [ip, mac, hostname] = msg.body;
  if (typeof ip !== 'string' || typeof mac !== 'string') return undefined;
  return {
    event,
    ip,
    mac: mac.toLowerCase(),
    hostname: typeof hostname === 'string' ? hostname : '',
    dbusName: msg.interface ?? '',
  };
}

export interface DnsmasqDbusLeaseEvents {
  'lease-changed': [DbusLeaseChange];
}

/**
 * Listens on an existing bus connection. With `dbusName` only that dnsmasq's signals are emitted;
 * without it, every dnsmasq's (use `dbusName` in the event to route them).
 */
export class DnsmasqDbusLeaseListener extends EventEmitter<DnsmasqDbusLeaseEvents> {
  private active = false;
  private readonly onMessage = (msg: Message) => {
    const change = leaseChangeFromMessage(msg);
    if (!change) return;
    if (this.dbusName !== undefined && change.dbusName !== this.dbusName) return;
    this.emit('lease-changed', change);
  };

  constructor(
    private readonly bus: MessageBus,
    private readonly dbusName?: string,
  ) {
    super();
  }

  /** Add the match rule and start emitting. */
  async start(): Promise<void> {
    if (this.active) return;
    this.bus.on('message', this.onMessage);
    this.active = true;
    try {
      await this.matchRule('AddMatch');
    } catch (e) {
      this.bus.removeListener('message', this.onMessage);
      this.active = false;
      throw e;
    }
  }

  /** Remove the match rule and stop emitting. */
  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.bus.removeListener('message', this.onMessage);
    await this.matchRule('RemoveMatch').catch(() => {});
  }

  private matchRule(member: 'AddMatch' | 'RemoveMatch'): Promise<unknown[]> {
    return callMethod(this.bus, {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member,
      signature: 's',
      body: [DNSMASQ_DBUS_MATCH],
    });
  }
}
