import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Message, MessageBus } from '../../src/bus/dbus.js';
import { MessageType } from '../../src/bus/dbus.js';
import {
  type DbusLeaseChange,
  DNSMASQ_DBUS_MATCH,
  DNSMASQ_DBUS_PATH,
  DnsmasqDbusLeaseListener,
  dnsmasqDbusName,
  leaseChangeFromMessage,
} from './dnsmasq-dbus.js';

const sig = (
  member: string,
  body: unknown[],
  iface = 'uk.org.thekelleys.dnsmasq.virbr0',
  path = DNSMASQ_DBUS_PATH,
) => ({ type: MessageType.SIGNAL, path, interface: iface, member, body, flags: 0, serial: 1 }) as Message;

describe('leaseChangeFromMessage', () => {
  it('maps the three dnsmasq signals', () => {
    expect(leaseChangeFromMessage(sig('DhcpLeaseAdded', ['10.0.0.5', '52:54:00:AA:00:01', 'vm1']))).toEqual({
      event: 'added',
      ip: '10.0.0.5',
      mac: '52:54:00:aa:00:01',
      hostname: 'vm1',
      dbusName: 'uk.org.thekelleys.dnsmasq.virbr0',
    });
    expect(leaseChangeFromMessage(sig('DhcpLeaseUpdated', ['10.0.0.5', 'm', '']))?.event).toBe('updated');
    expect(leaseChangeFromMessage(sig('DhcpLeaseDeleted', ['10.0.0.5', 'm', '']))?.event).toBe('deleted');
  });
  it('ignores other paths, members, message types and bodies', () => {
    expect(leaseChangeFromMessage(sig('DhcpLeaseAdded', ['a', 'b', 'c'], 'x', '/other'))).toBeUndefined();
    expect(leaseChangeFromMessage(sig('Up', []))).toBeUndefined();
    expect(
      leaseChangeFromMessage({ ...sig('DhcpLeaseAdded', ['a', 'b', 'c']), type: MessageType.METHOD_CALL }),
    ).toBeUndefined();
    expect(leaseChangeFromMessage(sig('DhcpLeaseAdded', [1, 2]))).toBeUndefined();
  });
  it('names the bus name like libvirt', () => {
    expect(dnsmasqDbusName('virbr0')).toBe('uk.org.thekelleys.dnsmasq.virbr0');
  });
});

class FakeBus extends EventEmitter {
  calls: Message[] = [];
  async call(msg: Message) {
    this.calls.push(msg);
    return null;
  }
}

describe('DnsmasqDbusLeaseListener', () => {
  it('adds the match on the path, emits only its own dnsmasq, removes the match on stop', async () => {
    const bus = new FakeBus();
    const l = new DnsmasqDbusLeaseListener(bus as unknown as MessageBus, 'uk.org.thekelleys.dnsmasq.virbr0');
    const got: DbusLeaseChange[] = [];
    l.on('lease-changed', (c) => got.push(c));
    await l.start();
    expect(bus.calls.map((c) => [c.member, c.body])).toEqual([['AddMatch', [DNSMASQ_DBUS_MATCH]]]);
    bus.emit('message', sig('DhcpLeaseAdded', ['10.0.0.5', '52:54:00:aa:00:01', 'vm1']));
    bus.emit(
      'message',
      sig('DhcpLeaseAdded', ['10.1.0.5', '52:54:00:aa:00:02', 'vm2'], 'uk.org.thekelleys.dnsmasq.virbr1'),
    );
    expect(got.map((c) => c.ip)).toEqual(['10.0.0.5']);
    await l.stop();
    bus.emit('message', sig('DhcpLeaseDeleted', ['10.0.0.5', '52:54:00:aa:00:01', 'vm1']));
    expect(got).toHaveLength(1);
    expect(bus.calls.map((c) => c.member)).toEqual(['AddMatch', 'RemoveMatch']);
    expect(bus.listenerCount('message')).toBe(0);
  });
  it('without a name it emits every dnsmasq', async () => {
    const bus = new FakeBus();
    const l = new DnsmasqDbusLeaseListener(bus as unknown as MessageBus);
    const got: string[] = [];
    l.on('lease-changed', (c) => got.push(c.dbusName));
    await l.start();
    bus.emit('message', sig('DhcpLeaseAdded', ['10.0.0.5', 'm', ''], 'a.b'));
    bus.emit('message', sig('DhcpLeaseAdded', ['10.0.0.6', 'm', ''], 'c.d'));
    expect(got).toEqual(['a.b', 'c.d']);
  });
});
