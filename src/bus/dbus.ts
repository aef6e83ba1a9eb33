/**
 * A typed view of the parts of @jellybrick/dbus-next that virtnet uses. The package's own typings
 * declare an ambient module named 'dbus-next' (not the fork's name), so they cannot be imported; this
 * module loads the CommonJS package and gives it precise types. Adapter, no logic.
 */
import { createRequire } from 'node:module';

export const MessageType = { METHOD_CALL: 1, METHOD_RETURN: 2, ERROR: 3, SIGNAL: 4 } as const;
export const MessageFlag = {
  NO_REPLY_EXPECTED: 1,
  NO_AUTO_START: 2,
  ALLOW_INTERACTIVE_AUTHORIZATION: 4,
} as const;
export const NameFlag = { ALLOW_REPLACEMENT: 1, REPLACE_EXISTING: 2, DO_NOT_QUEUE: 4 } as const;
export const RequestNameReply = { PRIMARY_OWNER: 1, IN_QUEUE: 2, EXISTS: 3, ALREADY_OWNER: 4 } as const;

export interface Message {
  type: number;
  serial: number | null;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature?: string;
  body: unknown[];
  flags: number;
}

/** The fields a new message is built from: any subset of a message's. */
export type MessageFields = Partial<Message>;

export interface MessageStatic {
  new (fields: MessageFields): Message;
  newError(msg: Message, errorName: string, errorText?: string): Message;
  newMethodReturn(msg: Message, signature?: string, body?: unknown[]): Message;
  newSignal(path: string, iface: string, name: string, signature?: string, body?: unknown[]): Message;
}

export interface Variant {
  signature: string;
  value: unknown;
}

export interface VariantStatic {
  new (signature: string, value: unknown): Variant;
}

export interface DBusErrorLike extends Error {
  type: string;
  text: string;
}

export interface MessageBus {
  /** The unique name (":1.42") once connected. */
  name: string | null;
  call(msg: Message): Promise<Message | null>;
  send(msg: Message): void;
  requestName(name: string, flags: number): Promise<number>;
  releaseName(name: string): Promise<number>;
  addMethodHandler(fn: (msg: Message) => boolean): void;
  removeMethodHandler(fn: (msg: Message) => boolean): void;
  disconnect(): void;
  on(event: 'connect', listener: () => void): this;
  on(event: 'message', listener: (msg: Message) => void): this;
  on(event: 'error', listener: (err: unknown) => void): this;
  once(event: 'connect', listener: () => void): this;
  once(event: 'error', listener: (err: unknown) => void): this;
  removeListener(event: string, listener: (...args: never[]) => void): this;
}

interface DbusNext {
  Message: MessageStatic;
  Variant: VariantStatic;
  sessionBus(opts?: { busAddress?: string }): MessageBus;
}

const require = createRequire(import.meta.url);
const dbusNext = require('@jellybrick/dbus-next') as DbusNext;

export const Message: MessageStatic = dbusNext.Message;
export const Variant: VariantStatic = dbusNext.Variant;

/** Is `e` an error reply (dbus-next's DBusError)? */
export function isDBusError(e: unknown): e is DBusErrorLike {
  return e instanceof Error && typeof (e as Partial<DBusErrorLike>).type === 'string';
}

/**
 * The bus address for `--bus system|ADDRESS`: 'system' means DBUS_SYSTEM_BUS_ADDRESS or the standard
 * socket; anything else is used as the address.
 */
export function resolveBusAddress(bus: string, env: NodeJS.ProcessEnv = process.env): string {
  if (bus === 'system') return env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/run/dbus/system_bus_socket';
  return bus;
}

/**
 * Connect to the bus at `address` and wait until the Hello exchange gave us a unique name. (dbus-next's
 * systemBus() ignores a given address, so every connection goes through sessionBus({busAddress}).)
 */
export function connectBus(address: string, timeoutMs = 10_000): Promise<MessageBus> {
  return new Promise((resolve, reject) => {
    let bus: MessageBus;
    try {
      bus = dbusNext.sessionBus({ busAddress: address });
    } catch (e) {
      reject(e);
      return;
    }
    const timer = setTimeout(() => {
      reject(new Error(`no answer from the bus at ${address} within ${timeoutMs} ms`));
      try {
        bus.disconnect();
      } catch {}
    }, timeoutMs);
    const onError = (err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    bus.once('error', onError);
    bus.once('connect', () => {
      clearTimeout(timer);
      bus.removeListener('error', onError);
      resolve(bus);
    });
  });
}

/** Call a method and return the reply body (throws dbus-next's DBusError on an error reply). */
export async function callMethod(
  bus: MessageBus,
  fields: Required<Pick<MessageFields, 'destination' | 'path' | 'interface' | 'member'>> &
    Pick<MessageFields, 'signature' | 'body' | 'flags'>,
): Promise<unknown[]> {
  const reply = await bus.call(new Message({ type: MessageType.METHOD_CALL, ...fields }));
  return reply?.body ?? [];
}
