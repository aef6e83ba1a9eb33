/**
 * Test doubles for the hook handler's context: an engine that keeps hosts and ports in memory (with a
 * read-modify-write delay in addHost/removeHost, so unserialized concurrent calls WOULD lose entries),
 * a forwarder that records per-domain rule sets, and an event recorder.
 */

import { memberHostRefusal } from '../../src/engine/span.js';
import type { ActiveNetworkInfo } from '../../src/engine/types.js';
import { NotFoundError } from '../../src/errors.js';
import type {
  DomainForwards,
  HookContext,
  HookEngine,
  HookEvents,
  PortForwarder,
} from '../../src/hooks/context.js';
import { LockManager } from '../../src/hooks/lock.js';
import { type DomainRecordStore, MemoryRecordStore } from '../../src/hooks/records.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import type { HostEntry } from '../../src/model/values.js';
import { withLiveHost } from '../../src/plan/dnsmasq.js';

const tick = () => new Promise((r) => setTimeout(r, Math.random() * 3));

export class FakeEngine implements HookEngine {
  readonly nets = new Map<string, ActiveNetworkInfo>();
  readonly calls: string[] = [];
  failAttach = false;

  up(name: string, bridge: string): void {
    this.nets.set(name, {
      name,
      bridge,
      firewall: 'nftables',
      ports: [],
      extraHosts: [],
      startedAt: new Date().toISOString(),
    });
  }
  /** The network runs on this host as a member of a span (the engine's state after such a start). */
  spanMember(name: string, gateway = '192.0.2.11'): void {
    this.net(name).span = {
      mode: 'vxlan',
      vni: 10100,
      role: 'member',
      gateway,
      local: '192.0.2.12',
      remotes: [gateway],
      port: 'vx10100',
    };
  }
  isActive(name: string) {
    return this.nets.has(name);
  }
  info(name: string) {
    return this.nets.get(name);
  }
  private net(name: string): ActiveNetworkInfo {
    const n = this.nets.get(name);
    if (!n) throw new NotFoundError(`network ${name} is not active`);
    return n;
  }
  async addHost(name: string, host: HostEntry) {
    this.calls.push(`addHost ${name} ${host.mac} ${host.ip ?? ''} ${host.hostname ?? ''}`);
    const refused = memberHostRefusal(name, this.net(name).span);
    if (refused) throw refused;
    const before = [...this.net(name).extraHosts];
    // The real engine's check (pure, shared): what LinuxEngine refuses, this double refuses too.
    const { hosts } = withLiveHost(name, before, host);
    await tick();
    this.net(name).extraHosts = hosts;
  }
  async removeHost(name: string, mac: string) {
    this.calls.push(`removeHost ${name} ${mac}`);
    const before = [...this.net(name).extraHosts];
    if (!before.some((h) => h.mac === mac.toLowerCase()))
      throw new NotFoundError(`network ${name}: no live host ${mac}`);
    await tick();
    this.net(name).extraHosts = before.filter((h) => h.mac !== mac.toLowerCase());
  }
  async attachPort(name: string, ifname: string) {
    this.calls.push(`attachPort ${name} ${ifname}`);
    if (this.failAttach) throw new Error(`Cannot find device "${ifname}"`);
    const before = [...this.net(name).ports];
    await tick();
    this.net(name).ports = [...before.filter((p) => p !== ifname), ifname];
  }
  async detachPort(name: string, ifname: string) {
    this.calls.push(`detachPort ${name} ${ifname}`);
    this.net(name).ports = this.net(name).ports.filter((p) => p !== ifname);
  }
}

export class FakeForwarder implements PortForwarder {
  readonly installed = new Map<string, DomainForwards>();
  readonly calls: string[] = [];
  fail = false;
  async apply(f: DomainForwards) {
    this.calls.push(`apply ${f.domain} ${f.rules.length}`);
    if (this.fail) throw new Error('nft: Could not process rule');
    this.installed.set(f.key, structuredClone(f));
  }
  async remove(f: DomainForwards) {
    this.calls.push(`remove ${f.domain}`);
    this.installed.delete(f.key);
  }
}

export type Emitted = { [K in keyof HookEvents]: { event: K; payload: HookEvents[K] } }[keyof HookEvents];

export interface TestContext extends HookContext {
  engine: FakeEngine;
  forwarder: FakeForwarder;
  emitted: Emitted[];
  defs: Network[];
}

export function virtnetNetwork(name: string, bridge: string, octet = 77, hosts = ''): Network {
  return parseNetworkXml(`<network>
  <name>${name}</name>
  <forward mode='nat'/>
  <bridge name='${bridge}'/>
  <ip address='10.${octet}.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.${octet}.0.100' end='10.${octet}.0.200'/>${hosts}</dhcp>
  </ip>
  <ip family='ipv6' address='fd00:${octet}::1' prefix='64'/>
</network>`).network;
}

export function makeContext(
  opts: { records?: DomainRecordStore; locks?: LockManager; networks?: Network[] } = {},
): TestContext {
  const engine = new FakeEngine();
  const forwarder = new FakeForwarder();
  const emitted: Emitted[] = [];
  const defs = opts.networks ?? [virtnetNetwork('vnet-h8', 'vbr-h8')];
  for (const n of defs) engine.up(n.name, n.bridge.name!);
  return {
    networks: () => defs,
    defs,
    engine,
    forwarder,
    records: opts.records ?? new MemoryRecordStore(),
    locks: opts.locks ?? new LockManager(),
    emit: (event, payload) => emitted.push({ event, payload } as Emitted),
    emitted,
    log: {
      info: () => {},
      warning: () => {},
      error: () => {},
      debug: () => {},
    } as unknown as HookContext['log'],
  };
}

/** A minimal running-domain XML (as at `start`: tap named) with optional virtnet metadata. */
export function domainXml(opts: {
  name: string;
  uuid: string;
  mac: string;
  type?: 'bridge' | 'ethernet' | 'network';
  bridge?: string;
  network?: string;
  tap?: string;
  metadata?: string;
}): string {
  const type = opts.type ?? 'bridge';
  const src =
    type === 'bridge'
      ? `<source bridge='${opts.bridge ?? 'vbr-h8'}'/>`
      : type === 'network'
        ? `<source network='${opts.network ?? 'default'}'/>`
        : '';
  return `<domain type='qemu'>
  <name>${opts.name}</name>
  <uuid>${opts.uuid}</uuid>
  ${opts.metadata ? `<metadata>${opts.metadata}</metadata>` : ''}
  <devices>
    <interface type='${type}'>
      <mac address='${opts.mac}'/>
      ${src}
      ${opts.tap ? `<target dev='${opts.tap}'/>` : ''}
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`;
}

export function meta(inner: string): string {
  return `<virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1">${inner}</virtnet:domain>`;
}

export function uuidFor(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

export function macFor(i: number): string {
  return `52:54:00:10:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}
