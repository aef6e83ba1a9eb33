/**
 * The object tree virtnetd exports and the dispatcher that answers calls on it. Built directly on
 * dbus-next's low-level method handler (not its Interface classes) so that every call knows its sender
 * (for authorization), arguments are checked against api.ts before any code runs (a wrong signature is
 * org.freedesktop.DBus.Error.InvalidArgs, never a crash), the introspection carries argument names, and
 * org.freedesktop.DBus.ObjectManager and PropertiesChanged are emitted from one place.
 */
import {
  INTROSPECTABLE_INTERFACE,
  type InterfaceSpec,
  type MethodSpec,
  OBJECT_MANAGER_INTERFACE,
  objectManagerInterface,
  PROPERTIES_INTERFACE,
  signatureOf,
  standardInterfaces,
} from '../bus/api.js';
import {
  type Message,
  type MessageBus,
  MessageFlag,
  MessageType,
  Message as Msg,
  Variant,
} from '../bus/dbus.js';
import { toBusError } from '../bus/errors.js';
import { nodeXml } from './introspect.js';

const DBUS_ERROR = 'org.freedesktop.DBus.Error';

/** Who is calling, as the dispatcher knows it. */
export interface CallContext {
  sender: string;
  /** The caller set ALLOW_INTERACTIVE_AUTHORIZATION (polkit may ask the user). */
  interactive: boolean;
}

/** One interface implemented on one object. */
export interface InterfaceImpl {
  spec: InterfaceSpec;
  /** Current value of a property (JS value matching its signature). */
  get(property: string): unknown;
  /** Run a method; returns the out arguments (empty array for none). */
  call(method: string, args: unknown[], ctx: CallContext): Promise<unknown[]> | unknown[];
}

export interface BusObjectsOptions {
  /** The path where org.freedesktop.DBus.ObjectManager is served. */
  objectManagerPath: string;
  /** Throws (a BusError AccessDenied) when the caller may not run a method guarded by `action`. */
  authorize(ctx: CallContext, action: string, method: MethodSpec): Promise<void>;
  /** Calls wait for this before running (the daemon is still loading). */
  ready?: Promise<void>;
  /** The reply for calls on a path under `notFoundPrefix` that is not exported. */
  notFound?: { prefix: string; message: (path: string) => string; errorName: string };
  /** Told about unexpected exceptions (for the log). */
  onInternalError?: (e: unknown, where: string) => void;
  /** Told when a call of a method that changes something (it has a polkit action) is done. */
  onChangeDone?: () => void;
}

function propsVariantMap(impl: InterfaceImpl): Record<string, Variant> {
  const out: Record<string, Variant> = {};
  for (const p of impl.spec.properties) out[p.name] = new Variant(p.type, impl.get(p.name));
  return out;
}

export class BusObjects {
  private readonly objects = new Map<string, Map<string, InterfaceImpl>>();
  private readonly handler = (msg: Message) => this.handle(msg);

  /** opts.ready has resolved (or there is none): calls are answered at once. */
  private ready: boolean;

  constructor(
    private readonly bus: MessageBus,
    private readonly opts: BusObjectsOptions,
  ) {
    this.ready = !opts.ready;
    opts.ready?.then(
      () => {
        this.ready = true;
      },
      () => {},
    );
    bus.addMethodHandler(this.handler);
  }

  /** Stop answering (the bus connection stays open). */
  detach(): void {
    this.bus.removeMethodHandler(this.handler);
  }

  has(path: string): boolean {
    return this.objects.has(path);
  }

  paths(): string[] {
    return [...this.objects.keys()];
  }

  /** Export an object; emits InterfacesAdded unless it is the object manager itself. */
  add(path: string, impls: InterfaceImpl[]): void {
    if (this.objects.has(path)) throw new Error(`object ${path} is already exported`);
    const map = new Map(impls.map((i) => [i.spec.name, i] as const));
    this.objects.set(path, map);
    if (path !== this.opts.objectManagerPath) {
      const ifaces: Record<string, Record<string, Variant>> = {};
      for (const impl of impls) ifaces[impl.spec.name] = propsVariantMap(impl);
      this.signal(this.opts.objectManagerPath, OBJECT_MANAGER_INTERFACE, 'InterfacesAdded', 'oa{sa{sv}}', [
        path,
        ifaces,
      ]);
    }
  }

  /** Remove an object; emits InterfacesRemoved. */
  remove(path: string): void {
    const map = this.objects.get(path);
    if (!map) return;
    this.objects.delete(path);
    if (path !== this.opts.objectManagerPath) {
      this.signal(this.opts.objectManagerPath, OBJECT_MANAGER_INTERFACE, 'InterfacesRemoved', 'oas', [
        path,
        [...map.keys()],
      ]);
    }
  }

  /** Emit a signal from `path`. */
  signal(path: string, iface: string, member: string, signature: string, body: unknown[]): void {
    this.bus.send(Msg.newSignal(path, iface, member, signature, body));
  }

  /** Emit PropertiesChanged for the named properties with their current values. */
  propertiesChanged(path: string, iface: string, names: string[]): void {
    const impl = this.objects.get(path)?.get(iface);
    if (!impl || !names.length) return;
    const changed: Record<string, Variant> = {};
    for (const n of names) {
      const p = impl.spec.properties.find((x) => x.name === n);
      if (p) changed[n] = new Variant(p.type, impl.get(n));
    }
    this.signal(path, PROPERTIES_INTERFACE, 'PropertiesChanged', 'sa{sv}as', [iface, changed, []]);
  }

  /** Introspection XML of `path` (its interfaces and child nodes). */
  introspect(path: string): string {
    const map = this.objects.get(path);
    const ifaces: InterfaceSpec[] = [];
    if (map) {
      ifaces.push(...standardInterfaces);
      if (path === this.opts.objectManagerPath) ifaces.push(objectManagerInterface);
      for (const impl of map.values()) ifaces.push(impl.spec);
    }
    const prefix = path === '/' ? '/' : `${path}/`;
    const children = new Set<string>();
    for (const p of this.objects.keys()) {
      if (p.startsWith(prefix)) children.add(p.slice(prefix.length).split('/')[0]!);
    }
    return nodeXml(ifaces, [...children].sort());
  }

  private isAncestor(path: string): boolean {
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const p of this.objects.keys()) if (p.startsWith(prefix)) return true;
    return false;
  }

  /** dbus-next method handler: true when the call was ours (answered or being answered). */
  private handle(msg: Message): boolean {
    if (msg.type !== MessageType.METHOD_CALL || !msg.path || !msg.member) return false;
    const path = msg.path;
    const map = this.objects.get(path);
    const iface = msg.interface;
    const sig = msg.signature ?? '';

    if (iface === INTROSPECTABLE_INTERFACE && msg.member === 'Introspect') {
      if (!map && !this.isAncestor(path)) return false;
      this.reply(msg, 's', [this.introspect(path)]);
      return true;
    }
    if (!map) {
      const nf = this.opts.notFound;
      if (nf && path.startsWith(nf.prefix) && iface !== 'org.freedesktop.DBus.Peer') {
        this.error(msg, nf.errorName, nf.message(path));
        return true;
      }
      return false;
    }
    if (iface === 'org.freedesktop.DBus.Peer') return false; // dbus-next answers Ping/GetMachineId

    if (iface === PROPERTIES_INTERFACE) {
      this.handleProperties(msg, map, sig);
      return true;
    }
    if (iface === OBJECT_MANAGER_INTERFACE && path === this.opts.objectManagerPath) {
      if (msg.member !== 'GetManagedObjects') {
        this.error(msg, `${DBUS_ERROR}.UnknownMethod`, `no method ${msg.member} on ${iface}`);
      } else if (sig !== '') {
        this.error(msg, `${DBUS_ERROR}.InvalidArgs`, `GetManagedObjects takes no arguments (got '${sig}')`);
      } else {
        this.run(msg, async () => [this.managedObjects()], 'a{oa{sa{sv}}}');
      }
      return true;
    }

    // One of our interfaces (the interface field is optional in a call: search all when absent).
    let impl: InterfaceImpl | undefined;
    let method: MethodSpec | undefined;
    if (iface) {
      impl = map.get(iface);
      if (!impl) {
        this.error(msg, `${DBUS_ERROR}.UnknownInterface`, `object ${path} has no interface ${iface}`);
        return true;
      }
      method = impl.spec.methods.find((m) => m.name === msg.member);
    } else {
      for (const candidate of map.values()) {
        method = candidate.spec.methods.find((m) => m.name === msg.member);
        if (method) {
          impl = candidate;
          break;
        }
      }
    }
    if (!impl || !method) {
      this.error(
        msg,
        `${DBUS_ERROR}.UnknownMethod`,
        `no method ${msg.member} on ${iface ?? 'any interface of'} ${path}`,
      );
      return true;
    }
    const want = signatureOf(method.in);
    if (sig !== want) {
      const names = method.in.map((x) => `${x.type} ${x.name}`).join(', ');
      this.error(
        msg,
        `${DBUS_ERROR}.InvalidArgs`,
        `${impl.spec.name}.${method.name} takes (${names}) — signature '${want}', got '${sig}'`,
      );
      return true;
    }
    const ctx: CallContext = {
      sender: msg.sender ?? '',
      interactive: (msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION) !== 0,
    };
    const target = impl;
    const spec = method;
    this.run(
      msg,
      async () => {
        if (!spec.action) return target.call(spec.name, msg.body ?? [], ctx);
        try {
          await this.opts.authorize(ctx, spec.action, spec);
          return await target.call(spec.name, msg.body ?? [], ctx);
        } finally {
          this.opts.onChangeDone?.();
        }
      },
      signatureOf(spec.out),
    );
    return true;
  }

  private handleProperties(msg: Message, map: Map<string, InterfaceImpl>, sig: string): void {
    const body = msg.body ?? [];
    const member = msg.member;
    const lookup = (ifaceName: string): InterfaceImpl | undefined => map.get(ifaceName);
    if (member === 'Get') {
      if (sig !== 'ss') {
        this.error(msg, `${DBUS_ERROR}.InvalidArgs`, `Get takes (s interface, s property), got '${sig}'`);
        return;
      }
      const [ifaceName, prop] = body as [string, string];
      const impl = lookup(ifaceName);
      if (!impl) {
        this.error(msg, `${DBUS_ERROR}.UnknownInterface`, `no interface ${ifaceName} on ${msg.path}`);
        return;
      }
      const p = impl.spec.properties.find((x) => x.name === prop);
      if (!p) {
        this.error(msg, `${DBUS_ERROR}.UnknownProperty`, `no property ${prop} on ${ifaceName}`);
        return;
      }
      // The hot path (desktop tools poll properties): answered in this turn, no promise chain.
      this.answerNow(msg, () => [new Variant(p.type, impl.get(p.name))], 'v');
      return;
    }
    if (member === 'GetAll') {
      if (sig !== 's') {
        this.error(msg, `${DBUS_ERROR}.InvalidArgs`, `GetAll takes (s interface), got '${sig}'`);
        return;
      }
      const ifaceName = body[0] as string;
      if (ifaceName === '') {
        const all: Record<string, Variant> = {};
        for (const impl of map.values()) Object.assign(all, propsVariantMap(impl));
        this.run(msg, async () => [all], 'a{sv}');
        return;
      }
      const impl = lookup(ifaceName);
      this.run(msg, async () => [impl ? propsVariantMap(impl) : {}], 'a{sv}');
      return;
    }
    if (member === 'Set') {
      if (sig !== 'ssv') {
        this.error(msg, `${DBUS_ERROR}.InvalidArgs`, `Set takes (s, s, v), got '${sig}'`);
        return;
      }
      const [ifaceName, prop] = body as [string, string];
      const p = lookup(ifaceName)?.spec.properties.find((x) => x.name === prop);
      if (!p) this.error(msg, `${DBUS_ERROR}.UnknownProperty`, `no property ${prop} on ${ifaceName}`);
      else
        this.error(
          msg,
          `${DBUS_ERROR}.PropertyReadOnly`,
          `${ifaceName}.${prop} is read-only; use the interface's methods (e.g. SetAutostart)`,
        );
      return;
    }
    this.error(msg, `${DBUS_ERROR}.UnknownMethod`, `no method ${member} on ${PROPERTIES_INTERFACE}`);
  }

  private managedObjects(): Record<string, Record<string, Record<string, Variant>>> {
    const out: Record<string, Record<string, Record<string, Variant>>> = {};
    for (const [path, map] of this.objects) {
      if (path === this.opts.objectManagerPath) continue;
      const ifaces: Record<string, Record<string, Variant>> = {};
      for (const impl of map.values()) ifaces[impl.spec.name] = propsVariantMap(impl);
      out[path] = ifaces;
    }
    return out;
  }

  /** Like run() for a synchronous answer: at once when the daemon is ready, else once it is. */
  private answerNow(msg: Message, fn: () => unknown[], outSig: string): void {
    if (!this.ready) {
      this.run(msg, async () => fn(), outSig);
      return;
    }
    let out: unknown[];
    try {
      out = fn();
    } catch (e) {
      this.fail(msg, e);
      return;
    }
    this.answer(msg, outSig, out);
  }

  private answer(msg: Message, outSig: string, out: unknown[]): void {
    try {
      this.reply(msg, outSig, out);
    } catch (e) {
      this.opts.onInternalError?.(e, `reply to ${msg.interface}.${msg.member}`);
      this.error(msg, 'org.virtnet.network1.Error.Failed', 'internal error: could not encode the reply');
    }
  }

  private fail(msg: Message, e: unknown): void {
    const { name, message } = toBusError(e);
    if (name.endsWith('.Failed') && message.startsWith('internal error')) {
      this.opts.onInternalError?.(e, `${msg.interface}.${msg.member}`);
    }
    this.error(msg, name, message);
  }

  private run(msg: Message, fn: () => Promise<unknown[]>, outSig: string, waitReady = true): void {
    const go = async () => {
      if (waitReady && this.opts.ready) await this.opts.ready;
      return fn();
    };
    go().then(
      (out) => this.answer(msg, outSig, out),
      (e: unknown) => this.fail(msg, e),
    );
  }

  private reply(msg: Message, signature: string, body: unknown[]): void {
    if (msg.flags & MessageFlag.NO_REPLY_EXPECTED) return;
    this.bus.send(Msg.newMethodReturn(msg, signature, body));
  }

  private error(msg: Message, name: string, text: string): void {
    if (msg.flags & MessageFlag.NO_REPLY_EXPECTED) return;
    this.bus.send(Msg.newError(msg, name, text));
  }
}
