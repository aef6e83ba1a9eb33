/**
 * Lease changes from a real dnsmasq: its D-Bus signals on a private system bus, and its lease file,
 * as a guest in a netns gets, renews and releases its lease.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callMethod, connectBus, type MessageBus } from '../../src/bus/dbus.js';
import { LeaseFileWatcher } from '../../src/dnsmasq/lease-watch.js';
import type { LeaseChange } from '../../src/dnsmasq/leases.js';
import { DnsmasqSupervisor } from '../../src/dnsmasq/supervisor.js';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { type PrivateBus, startPrivateBus } from '../helpers/dbus.js';
import { type DbusLeaseChange, DnsmasqDbusLeaseListener, dnsmasqDbusName } from '../helpers/dnsmasq-dbus.js';
import {
  cleanupAllNetns,
  createNetns,
  guestDhcp,
  link,
  type Netns,
  startGuestDhcp,
} from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';

const skip = missingPrereqs(['ip', 'busybox', 'dnsmasq', 'dbus-daemon']);

const MAC = '52:54:00:67:00:10';
const BRIDGE = 'vh6br0';

const waitFor = async (cond: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.skipIf(skip)('lease changes from a real dnsmasq (D-Bus signals and lease file)', () => {
  let host: Netns;
  let guest: Netns;
  let bus: PrivateBus;
  let conn: MessageBus;
  let sup: DnsmasqSupervisor;
  let listener: DnsmasqDbusLeaseListener;
  let watcher: LeaseFileWatcher;
  const fromBus: DbusLeaseChange[] = [];
  const fromFile: LeaseChange[] = [];
  const oldBusEnv = process.env.DBUS_SYSTEM_BUS_ADDRESS;

  beforeAll(async () => {
    // dnsmasq connects to the bus as root, before it drops to nobody (checked: a policy for root alone
    // suffices). Allow root to own the per-bridge names explicitly.
    bus = await startPrivateBus({
      extraPolicy: `<policy user="root"><allow own_prefix="uk.org.thekelleys.dnsmasq"/></policy>`,
    });
    conn = await connectBus(bus.address);
    host = await createNetns('vh6-');
    guest = await createNetns('vh6-');
    await host.addBridge(BRIDGE, { cidr: '10.67.0.1/24', mac: '52:54:00:67:00:01' });
    await link(host, 'vnet0', guest, 'eth0', { macB: MAC });
    await host.addPort(BRIDGE, 'vnet0');
    chmodSync(host.dir, 0o755);
    const conf = join(host.dir, 'l.conf');
    const hostsFile = join(host.dir, 'l.hostsfile');
    await writeFileAtomic(hostsFile, `${MAC},10.67.0.60,leasy\n`);
    await writeFileAtomic(
      conf,
      [
        'no-resolv',
        'except-interface=lo',
        'bind-dynamic',
        `interface=${BRIDGE}`,
        'dhcp-range=10.67.0.100,10.67.0.200,255.255.255.0',
        'dhcp-authoritative',
        `dhcp-hostsfile=${hostsFile}`,
        '',
      ].join('\n'),
    );
    const leaseFile = join(host.dir, 'l.leases');
    listener = new DnsmasqDbusLeaseListener(conn, dnsmasqDbusName(BRIDGE));
    listener.on('lease-changed', (c) => fromBus.push(c));
    await listener.start();
    watcher = new LeaseFileWatcher(leaseFile);
    watcher.on('lease-changed', (c) => fromFile.push(c));
    await watcher.start();
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address;
    sup = new DnsmasqSupervisor({
      name: 'leases',
      confFile: conf,
      pidFile: join(host.dir, 'l.pid'),
      leaseFile,
      argvOptions: { dbusName: dnsmasqDbusName(BRIDGE) },
      netns: host.name,
    });
    await sup.start();
  });

  afterAll(async () => {
    if (oldBusEnv === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
    else process.env.DBUS_SYSTEM_BUS_ADDRESS = oldBusEnv;
    watcher?.stop();
    await listener?.stop().catch(() => {});
    await sup?.stop().catch(() => {});
    conn?.disconnect();
    await bus?.stop();
    cleanupAllNetns();
  });

  it('dnsmasq owns its per-bridge bus name', async () => {
    const end = Date.now() + 5000;
    let owned = false;
    while (!owned && Date.now() < end) {
      const [has] = await callMethod(conn, {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'NameHasOwner',
        signature: 's',
        body: [dnsmasqDbusName(BRIDGE)],
      });
      owned = has === true;
      if (!owned) await new Promise((r) => setTimeout(r, 50));
    }
    expect(owned).toBe(true);
  });

  it('a new lease: DhcpLeaseAdded on the bus and "added" from the lease file', async () => {
    const lease = await guestDhcp(guest, 'eth0', { hostname: 'leasy' });
    expect(lease.ip).toBe('10.67.0.60');
    const want = { event: 'added', mac: MAC, ip: '10.67.0.60', hostname: 'leasy' };
    await waitFor(() => fromBus.length >= 1, 'bus signal');
    await waitFor(() => fromFile.length >= 1, 'lease file change');
    expect(fromBus[0]).toEqual({ ...want, dbusName: dnsmasqDbusName(BRIDGE) });
    expect(fromFile[0]).toEqual(want);
  });

  it('renew and release: DhcpLeaseUpdated, then DhcpLeaseDeleted and "deleted" from the file', async () => {
    const client = await startGuestDhcp(guest, 'eth0', { hostname: 'leasy', release: true });
    expect(client.lease.ip).toBe('10.67.0.60');
    const nBus = fromBus.length;
    const nFile = fromFile.length;
    await client.release();
    await waitFor(() => fromBus.some((c, i) => i >= nBus && c.event === 'deleted'), 'bus deleted');
    await waitFor(() => fromFile.some((c, i) => i >= nFile && c.event === 'deleted'), 'file deleted');
    expect(fromBus.slice(nBus).find((c) => c.event === 'deleted')).toMatchObject({
      mac: MAC,
      ip: '10.67.0.60',
    });
    expect(fromFile.slice(nFile).find((c) => c.event === 'deleted')).toMatchObject({
      mac: MAC,
      ip: '10.67.0.60',
    });
    expect(watcher.leases).toEqual([]);
    await client.stop();
  });

  it('in all: added, updated (the second DISCOVER of the same MAC), deleted', () => {
    expect(fromBus.map((c) => c.event)).toEqual(['added', 'updated', 'deleted']);
  });
});
