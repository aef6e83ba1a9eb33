/**
 * The dispatcher's property Get path against a fake bus connection: answered in the same turn once
 * the daemon is ready (the hot path desktop tools poll), held until it is ready before, and a getter
 * that throws becomes a named error reply.
 */
import { describe, expect, it } from 'vitest';
import { NETWORK_INTERFACE, networkInterface, PROPERTIES_INTERFACE } from '../../src/bus/api.js';
import { type Message, type MessageBus, MessageType, Message as Msg } from '../../src/bus/dbus.js';
import { BusObjects, type InterfaceImpl } from '../../src/daemon/bus-objects.js';
import { NotFoundError } from '../../src/errors.js';

/** Just enough of a bus connection: the handler BusObjects installs, and what it sends. */
function fakeBus() {
  const sent: Message[] = [];
  let handler: ((m: Message) => boolean) | undefined;
  const bus = {
    name: ':1.1',
    send: (m: Message) => sent.push(m),
    addMethodHandler: (fn: (m: Message) => boolean) => {
      handler = fn;
    },
    removeMethodHandler: () => {},
  } as unknown as MessageBus;
  let serial = 1;
  const get = (path: string, prop: string) =>
    handler!(
      new Msg({
        type: MessageType.METHOD_CALL,
        serial: serial++,
        sender: ':1.9',
        path,
        interface: PROPERTIES_INTERFACE,
        member: 'Get',
        signature: 'ss',
        body: [NETWORK_INTERFACE, prop],
      }),
    );
  return { bus, sent, get };
}

function network(name: string, state = { gone: false }): InterfaceImpl {
  return {
    spec: networkInterface,
    get: (p) => {
      if (state.gone) throw new NotFoundError(`network '${name}' no longer exists`);
      return p === 'Name' ? name : p === 'Active' ? true : '';
    },
    call: async () => [],
  };
}

const opts = (ready?: Promise<void>) => ({
  objectManagerPath: '/org/virtnet/network1',
  authorize: async () => {},
  ...(ready ? { ready } : {}),
});

describe('BusObjects property Get', () => {
  it('is answered in the same turn once ready', () => {
    const { bus, sent, get } = fakeBus();
    const objs = new BusObjects(bus, opts());
    objs.add('/org/virtnet/network1/network/a', [network('a')]);
    sent.length = 0;
    expect(get('/org/virtnet/network1/network/a', 'Name')).toBe(true);
    expect(sent).toHaveLength(1); // synchronously, no await in between
    expect(sent[0]!.type).toBe(MessageType.METHOD_RETURN);
    expect(sent[0]!.signature).toBe('v');
    expect((sent[0]!.body[0] as { value: unknown }).value).toBe('a');
  });

  it('waits for the daemon to be ready before answering', async () => {
    const { bus, sent, get } = fakeBus();
    let release!: () => void;
    const ready = new Promise<void>((r) => {
      release = r;
    });
    const objs = new BusObjects(bus, opts(ready));
    objs.add('/org/virtnet/network1/network/a', [network('a')]);
    sent.length = 0;
    get('/org/virtnet/network1/network/a', 'Active');
    await new Promise((r) => setTimeout(r, 20));
    expect(sent).toHaveLength(0);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toHaveLength(1);
    expect((sent[0]!.body[0] as { value: unknown }).value).toBe(true);
    // Ready now: the next one is answered at once.
    get('/org/virtnet/network1/network/a', 'Name');
    expect(sent).toHaveLength(2);
  });

  it('a getter that throws becomes a named error reply', () => {
    const { bus, sent, get } = fakeBus();
    const objs = new BusObjects(bus, opts());
    const state = { gone: false };
    objs.add('/org/virtnet/network1/network/gone', [network('gone', state)]);
    state.gone = true; // removed from the service, its object not yet unexported
    sent.length = 0;
    get('/org/virtnet/network1/network/gone', 'Name');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.type).toBe(MessageType.ERROR);
    expect(sent[0]!.errorName).toBe('org.virtnet.network1.Error.NotFound');
    expect(sent[0]!.body[0]).toMatch(/no longer exists/);
  });
});

describe('BusObjects changing calls', () => {
  it('tell onChangeDone when a method with an action is done, not for reads', async () => {
    const { bus, sent } = fakeBus();
    let done = 0;
    let handler!: (m: Message) => boolean;
    const b = { ...bus, addMethodHandler: (fn: (m: Message) => boolean) => (handler = fn) } as MessageBus;
    const objs = new BusObjects(b, { ...opts(), onChangeDone: () => done++ });
    let finish!: () => void;
    const impl = network('a');
    impl.call = (m) => (m === 'Start' ? new Promise<unknown[]>((r) => (finish = () => r([]))) : []);
    objs.add('/org/virtnet/network1/network/a', [impl]);
    const call = (member: string) =>
      handler(
        new Msg({
          type: MessageType.METHOD_CALL,
          serial: 7,
          sender: ':1.9',
          path: '/org/virtnet/network1/network/a',
          interface: NETWORK_INTERFACE,
          member,
        }),
      );
    call('GetXML');
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(0);
    call('Start');
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(0); // still running
    finish();
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(1);
    expect(sent.at(-1)!.type).toBe(MessageType.METHOD_RETURN);
  });
});
