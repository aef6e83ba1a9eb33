/**
 * TEST DOUBLE: an in-memory Engine for unit tests of the bus layer. It changes nothing on the host; it
 * records calls, keeps "active" state and host entries in memory, and lets a test emit engine events
 * (leases, ports) and make the next call fail. Integration tests use the real engine.
 */
import { EventEmitter } from 'node:events';
import type { SpanPeer } from '../../src/engine/span.js';
import type { ActiveNetworkInfo, Engine, EngineEvents } from '../../src/engine/types.js';
import { type CommandError, NotFoundError } from '../../src/errors.js';
import type { Finding } from '../../src/firewall/doctor.js';
import type { Network } from '../../src/model/network.js';
import type { HostEntry, Lease } from '../../src/model/values.js';
import { withLiveHost } from '../../src/plan/dnsmasq.js';

export class FakeEngine implements Engine {
  readonly firewallBackend = 'nftables' as const;
  readonly calls: string[] = [];
  readonly active = new Map<string, ActiveNetworkInfo>();
  readonly leaseTable = new Map<string, Lease[]>();
  /** What doctor() answers, per network (the real checks run in test/integration/firewall-doctor.test.ts). */
  readonly doctorTable = new Map<string, Finding[]>();
  /** When set, the next start() fails with this CommandError. */
  failNextStart: CommandError | undefined;
  /** When set, start() and stop() take this long (to see calls overlap). */
  delayMs = 0;
  /** How many start()/stop() calls are running now, and the most that ever ran at once. */
  running = 0;
  maxRunning = 0;
  private async slow(): Promise<void> {
    if (!this.delayMs) return;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.running--;
  }
  private readonly ee = new EventEmitter();

  async adopt(defined: Network[]): Promise<void> {
    this.calls.push(`adopt ${defined.map((n) => n.name).join(',')}`);
  }
  async start(net: Network): Promise<ActiveNetworkInfo> {
    this.calls.push(`start ${net.name}`);
    await this.slow();
    if (this.failNextStart) {
      const e = this.failNextStart;
      this.failNextStart = undefined;
      throw e;
    }
    const info: ActiveNetworkInfo = {
      name: net.name,
      bridge: net.bridge.name ?? '',
      firewall: 'nftables',
      ports: [],
      extraHosts: [],
      startedAt: new Date().toISOString(),
    };
    this.active.set(net.name, info);
    this.emit('started', { name: net.name });
    return info;
  }
  async stop(name: string): Promise<void> {
    this.calls.push(`stop ${name}`);
    await this.slow();
    this.active.delete(name);
    this.emit('stopped', { name });
  }
  async update(net: Network): Promise<void> {
    this.calls.push(`update ${net.name}`);
  }
  isActive(name: string): boolean {
    return this.active.has(name);
  }
  info(name: string): ActiveNetworkInfo | undefined {
    return this.active.get(name);
  }
  /** The real engine's contract: a network that is not active is refused; this double runs no spans. */
  async spanPeers(name: string): Promise<SpanPeer[]> {
    if (!this.active.has(name)) throw new NotFoundError(`network ${name} is not active`);
    return [];
  }
  list(): ActiveNetworkInfo[] {
    return [...this.active.values()];
  }
  async addHost(name: string, host: HostEntry): Promise<void> {
    this.calls.push(`addHost ${name} ${host.mac} ${host.ip ?? ''} ${host.hostname ?? ''}`);
    const info = this.need(name);
    // The real engine's own check (pure): the double accepts exactly what LinuxEngine accepts.
    info.extraHosts = withLiveHost(name, info.extraHosts, host).hosts;
  }
  async removeHost(name: string, mac: string): Promise<void> {
    this.calls.push(`removeHost ${name} ${mac}`);
    const info = this.need(name);
    const key = mac.toLowerCase();
    if (!info.extraHosts.some((h) => h.mac?.toLowerCase() === key))
      throw new NotFoundError(`network ${name}: no live host ${mac}`);
    info.extraHosts = info.extraHosts.filter((h) => h.mac?.toLowerCase() !== key);
  }
  /** As LinuxEngine: a live change to a network that is not running is NotFound. */
  private need(name: string): ActiveNetworkInfo {
    const info = this.active.get(name);
    if (!info) throw new NotFoundError(`network ${name} is not active`);
    return info;
  }
  async leases(name: string): Promise<Lease[]> {
    return this.leaseTable.get(name) ?? [];
  }
  async attachPort(name: string, ifname: string, meta?: { mac?: string; domain?: string }): Promise<void> {
    this.calls.push(`attachPort ${name} ${ifname}`);
    this.emit('port-attached', { name, ifname, mac: meta?.mac ?? '', domain: meta?.domain ?? '' });
  }
  async detachPort(name: string, ifname: string, meta?: { domain?: string }): Promise<void> {
    this.calls.push(`detachPort ${name} ${ifname}`);
    this.emit('port-detached', { name, ifname, domain: meta?.domain ?? '' });
  }
  async doctor(name: string): Promise<Finding[]> {
    this.calls.push(`doctor ${name}`);
    return this.doctorTable.get(name) ?? [];
  }
  on<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void {
    this.ee.on(event, listener);
  }
  off<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void {
    this.ee.off(event, listener);
  }
  emit<K extends keyof EngineEvents>(event: K, payload: EngineEvents[K]): void {
    this.ee.emit(event, payload);
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
}
