/**
 * A MessageBus that survives the bus going away (dbus-daemon restarted): when the connection ends it
 * connects again (100 ms, doubling to 2 s, until it succeeds or `disconnect()`), puts its method
 * handlers back and requests again the names it owned, then emits 'reconnect'. Everything else is
 * passed to the current connection. Adapter: the daemon keeps one object for its whole life.
 */
import { EventEmitter } from 'node:events';
import { connectBus, type Message, type MessageBus } from '../bus/dbus.js';
import { withTimeout } from '../util/timeout.js';

export interface ReconnectLog {
  warning(msg: string): void;
  notice(msg: string): void;
  error(msg: string): void;
}

type Handler = (msg: Message) => boolean;

/** dbus-next's connection object (not in its typings): emits 'end' when the socket is closed. */
interface WithConnection {
  _connection?: EventEmitter & { stream?: EventEmitter };
}

export class ReconnectingBus extends EventEmitter {
  private current: MessageBus;
  private readonly handlers: Handler[] = [];
  private readonly names = new Map<string, number>();
  private closed = false;
  private reconnecting = false;
  /** False from the moment the connection is lost until a new one is up. */
  private up = true;

  constructor(
    private readonly address: string,
    initial: MessageBus,
    private readonly log: ReconnectLog,
    private readonly connect: (address: string) => Promise<MessageBus> = connectBus,
  ) {
    super();
    this.current = initial;
    this.watch(initial);
  }

  get name(): string | null {
    return this.current.name;
  }

  private watch(bus: MessageBus): void {
    const lost = (why: string) => {
      if (bus !== this.current || this.closed) return;
      this.up = false;
      void this.reconnect(why); // from a bus event; retries until connected or closed, never rejects
    };
    bus.on('message', (m) => this.emit('message', m));
    bus.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    // The socket ending (dbus-daemon gone) is what matters; other errors leave the connection usable.
    const conn = (bus as unknown as WithConnection)._connection;
    conn?.on('end', () => lost('the bus closed the connection'));
    conn?.stream?.on('close', () => lost('the connection to the bus closed'));
  }

  private async reconnect(why: string): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    this.log.warning(`lost the bus at ${this.address} (${why}); reconnecting`);
    let delay = 100;
    try {
      while (!this.closed) {
        await new Promise((r) => setTimeout(r, delay));
        if (this.closed) return;
        let bus: MessageBus;
        try {
          bus = await this.connect(this.address);
        } catch {
          delay = Math.min(delay * 2, 2000);
          continue;
        }
        if (this.closed) {
          bus.disconnect();
          return;
        }
        try {
          this.current.disconnect();
        } catch {}
        this.current = bus;
        this.up = true;
        this.watch(bus);
        for (const h of this.handlers) bus.addMethodHandler(h);
        for (const [name, flags] of this.names) {
          const reply = await bus.requestName(name, flags).catch((e: Error) => e);
          if (reply instanceof Error || (reply !== 1 && reply !== 4))
            this.log.error(`after reconnecting: could not own ${name} again (${String(reply)})`);
        }
        this.log.notice(`reconnected to the bus at ${this.address} as ${bus.name}`);
        this.emit('reconnect');
        return;
      }
    } finally {
      this.reconnecting = false;
    }
  }

  call(msg: Message): Promise<Message | null> {
    return this.current.call(msg);
  }
  send(msg: Message): void {
    this.current.send(msg);
  }
  async requestName(name: string, flags: number): Promise<number> {
    const r = await this.current.requestName(name, flags);
    if (r === 1 || r === 4) this.names.set(name, flags);
    return r;
  }
  /**
   * Releases the name, never waiting forever: on a lost connection dbus-next only emits an error and
   * the call's promise never settles, so then it is skipped (the bus drops a gone connection's names
   * anyway), and otherwise bounded by `timeoutMs` (resolves 0 when it ran out).
   */
  releaseName(name: string, timeoutMs = 2000): Promise<number> {
    this.names.delete(name);
    if (!this.up) return Promise.resolve(0);
    return withTimeout(this.current.releaseName(name), timeoutMs, () => 0);
  }
  addMethodHandler(fn: Handler): void {
    this.handlers.push(fn);
    this.current.addMethodHandler(fn);
  }
  removeMethodHandler(fn: Handler): void {
    const i = this.handlers.indexOf(fn);
    if (i >= 0) this.handlers.splice(i, 1);
    this.current.removeMethodHandler(fn);
  }
  override removeListener(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }
  disconnect(): void {
    this.closed = true;
    this.current.disconnect();
  }
}
