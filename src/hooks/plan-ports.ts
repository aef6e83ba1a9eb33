/**
 * Which of a domain's interfaces are virtnet's, and what virtnet must do for each. Pure: no I/O.
 *
 * - `type='bridge'` whose `<source bridge>` is a virtnet network's bridge: libvirt enslaves the tap;
 *   virtnet adds the DHCP reservation / DNS name and the port forwards.
 * - `type='ethernet'` whose metadata entry names a virtnet network (`network=`): virtnet enslaves the
 *   tap (`<target dev>`) to that network's bridge, then as above.
 * - `type='network'` whose `<source network>` names a virtnet network: libvirt's network of that name
 *   is virtnet's published bridge-mode one, so the tap lands on virtnet's bridge; treated as
 *   `type='bridge'` on it (at `prepare` the interface still reads `type='network'`).
 * - `type='network'` on any other (libvirt-managed) network: only the metadata's port forwards (the
 *   reservation itself is libvirt's business: virtnet never calls libvirt).
 *
 * `planPorts` validates the metadata against the networks; `findConflicts` checks the plan against
 * what other domains and the networks already hold (fixed IP taken, host port taken).
 */

import { type Problem, ValidationError } from '../errors.js';
import { type Domain, type DomainInterface, dnsNameFor, type PortForward } from '../model/domain.js';
import { broadcastAddress, canonicalIp, formatIp, inSubnet, networkAddress, parseIp } from '../model/ip.js';
import type { Network } from '../model/network.js';
import type { HostEntry } from '../model/values.js';
import type { DomainRecord, PortRecord } from './records.js';

function ifacePath(i: DomainInterface): string {
  return `domain/devices/interface[${i.index}]`;
}

function metaPath(i: DomainInterface): string {
  return `domain/metadata/virtnet:interface[mac=${i.virtnet && 'mac' in i.virtnet.match ? i.virtnet.match.mac : i.index}]`;
}

/** The virtnet network whose bridge is `bridge`. */
export function networkByBridge(networks: readonly Network[], bridge: string): Network | undefined {
  return networks.find((n) => n.bridge.name === bridge);
}

/**
 * The ports of `domain` virtnet acts on, validated against the defined virtnet networks.
 * @throws ValidationError (element path, value, reason) for metadata that cannot be applied.
 */
export function planPorts(domain: Domain, networks: readonly Network[]): PortRecord[] {
  const problems: Problem[] = [];
  const ports: PortRecord[] = [];
  const byName = new Map(networks.map((n) => [n.name, n]));

  for (const iface of domain.interfaces) {
    const meta = iface.virtnet;
    const mp = metaPath(iface);
    let kind: PortRecord['kind'] | undefined;
    let net: Network | undefined;
    let networkName: string | undefined;

    // On a virtnet network's bridge: `type='bridge'` naming it, or `type='network'` naming a virtnet
    // network — libvirt's network of that name is virtnet's published bridge-mode one, so the tap lands
    // on virtnet's bridge (at `start` the interface reads type='bridge' on it).
    const named =
      iface.type === 'network' && iface.source.network ? byName.get(iface.source.network) : undefined;
    const bridged =
      iface.type === 'bridge' && iface.source.bridge
        ? networkByBridge(networks, iface.source.bridge)
        : named?.bridge.name !== undefined
          ? named
          : undefined;
    if (bridged) {
      net = bridged;
      kind = 'bridge';
      networkName = net.name;
      if (meta?.network !== undefined && meta.network !== net.name)
        problems.push({
          path: `${mp}@network`,
          value: meta.network,
          reason: `the interface is on ${iface.type === 'bridge' ? `bridge '${iface.source.bridge}' of ` : ''}virtnet network '${net.name}'`,
        });
    } else if (iface.type === 'ethernet' && meta?.network !== undefined) {
      net = byName.get(meta.network);
      if (!net)
        problems.push({
          path: `${mp}@network`,
          value: meta.network,
          reason: 'no virtnet network of this name',
        });
      else if (!net.bridge.name)
        problems.push({
          path: `${mp}@network`,
          value: meta.network,
          reason: 'the virtnet network has no bridge',
        });
      else {
        kind = 'ethernet';
        networkName = net.name;
      }
    } else if (iface.type === 'network' && meta && iface.source.network) {
      kind = 'network';
      networkName = iface.source.network;
      if (meta.network !== undefined && meta.network !== iface.source.network)
        problems.push({
          path: `${mp}@network`,
          value: meta.network,
          reason: `network= is for type='ethernet'; this interface is on libvirt network '${iface.source.network}'`,
        });
    }

    if (!kind) {
      if (meta)
        problems.push({
          path: mp,
          value: iface.rawType,
          reason:
            iface.type === 'ethernet'
              ? "a type='ethernet' interface needs network= naming a virtnet network"
              : `interface[${iface.index}] (type '${iface.rawType}') is not on a virtnet network`,
        });
      continue;
    }
    if (!iface.mac) {
      problems.push({
        path: `${ifacePath(iface)}/mac`,
        value: undefined,
        reason: 'virtnet needs the MAC address',
      });
      continue;
    }

    const port: PortRecord = {
      index: iface.index,
      kind,
      network: networkName!,
      mac: iface.mac,
      forwards: [],
    };
    if (iface.target) port.ifname = iface.target;
    const bridge = kind === 'network' ? iface.source.bridge : net?.bridge.name;
    if (bridge) port.bridge = bridge;
    if (meta?.ip) port.ip = meta.ip;
    if (meta?.ip6) port.ip6 = meta.ip6;
    if (meta) port.forwards = meta.forwards.map((f) => ({ ...f, families: [...f.families] }));
    if (kind !== 'network') {
      const hostname = dnsNameFor(domain, iface);
      if (hostname) port.hostname = hostname;
      if (net) checkAddresses(net, port, mp, problems);
    }
    ports.push(port);
  }
  if (problems.length) throw new ValidationError(problems);
  return ports;
}

/** A fixed address must be inside one of the network's subnets and not be special in it. */
function checkAddresses(net: Network, port: PortRecord, mp: string, problems: Problem[]): void {
  for (const [attr, value, family] of [
    ['ip', port.ip, 'ipv4'],
    ['ip6', port.ip6, 'ipv6'],
  ] as const) {
    if (value === undefined) continue;
    const def = net.ips.find((d) => d.family === family && inSubnet(value, d.address, d.prefix));
    if (!def) {
      const subnets = net.ips.filter((d) => d.family === family).map((d) => `${d.address}/${d.prefix}`);
      problems.push({
        path: `${mp}@${attr}`,
        value,
        reason: subnets.length
          ? `not inside network '${net.name}' (${subnets.join(', ')})`
          : `network '${net.name}' has no ${family} address`,
      });
      continue;
    }
    if (canonicalIp(def.address) === value)
      problems.push({
        path: `${mp}@${attr}`,
        value,
        reason: `is the address of network '${net.name}' itself`,
      });
    else if (family === 'ipv4' && def.prefix < 31) {
      const netAddr = canonicalIp(networkAddressOf(def.address, def.prefix));
      if (value === netAddr || value === canonicalIp(broadcastAddress(def.address, def.prefix)))
        problems.push({ path: `${mp}@${attr}`, value, reason: 'is the subnet or broadcast address' });
    }
  }
}

function networkAddressOf(address: string, prefix: number): string {
  const p = parseIp(address)!;
  return formatIp(p.family, networkAddress(p.family, p.value, prefix));
}

/** Do two forwards compete for the same host port? */
export function forwardsClash(a: PortForward, b: PortForward): boolean {
  if (a.proto !== b.proto || a.hostPort !== b.hostPort) return false;
  if (!a.families.some((f) => b.families.includes(f))) return false;
  return a.hostAddress === undefined || b.hostAddress === undefined || a.hostAddress === b.hostAddress;
}

export interface ConflictState {
  networks: readonly Network[];
  /** Every domain's record (this domain's own is skipped by key). */
  records: readonly DomainRecord[];
  /** Live host entries per virtnet network (Engine.info(name).extraHosts). */
  extraHosts(network: string): readonly HostEntry[];
}

/**
 * What in `ports` is already held by someone else: a fixed IP (the network's own static hosts, live
 * host entries of other MACs, other domains), a MAC on the same network, a host port (any domain).
 * Returns one problem per conflict (empty: none).
 */
export function findConflicts(
  domain: { name: string; uuid?: string },
  ports: readonly PortRecord[],
  state: ConflictState,
): Problem[] {
  const problems: Problem[] = [];
  const others = state.records.filter((r) =>
    domain.uuid !== undefined && r.uuid !== undefined ? r.uuid !== domain.uuid : r.domain !== domain.name,
  );
  for (const p of ports) {
    const path = `domain/devices/interface[${p.index}]`;
    if (p.kind !== 'network') {
      const net = state.networks.find((n) => n.name === p.network);
      for (const [attr, ip] of [
        ['ip', p.ip],
        ['ip6', p.ip6],
      ] as const) {
        if (ip === undefined) continue;
        const staticHost = net?.ips
          .flatMap((d) => d.dhcp?.hosts ?? [])
          .find((h) => h.ip !== undefined && canonicalIp(h.ip) === ip && h.mac?.toLowerCase() !== p.mac);
        if (staticHost)
          problems.push({
            path: `${path} ${attr}`,
            value: ip,
            reason:
              `IP address taken on network '${p.network}' by the network's DHCP host ${staticHost.mac ?? staticHost.name ?? ''}`.trimEnd(),
          });
        const owner = others.find((r) =>
          r.ports.some(
            (q) => q.kind !== 'network' && q.network === p.network && (q.ip === ip || q.ip6 === ip),
          ),
        );
        if (owner)
          problems.push({
            path: `${path} ${attr}`,
            value: ip,
            reason: `IP address taken on network '${p.network}' by domain '${owner.domain}'`,
          });
        else {
          const ownedMacs = new Set(
            others.flatMap((r) => r.ports.filter((q) => q.network === p.network).map((q) => q.mac)),
          );
          const live = state
            .extraHosts(p.network)
            .find(
              (h) =>
                h.ip !== undefined && canonicalIp(h.ip) === ip && h.mac !== p.mac && !ownedMacs.has(h.mac),
            );
          if (live)
            problems.push({
              path: `${path} ${attr}`,
              value: ip,
              reason:
                `IP address taken on network '${p.network}' by host entry ${live.mac ?? live.hostname ?? ''}`.trimEnd(),
            });
        }
      }
      const macOwner = others.find((r) =>
        r.ports.some((q) => q.kind !== 'network' && q.network === p.network && q.mac === p.mac),
      );
      if (macOwner)
        problems.push({
          path: `${path}/mac@address`,
          value: p.mac,
          reason: `MAC address already used on network '${p.network}' by domain '${macOwner.domain}'`,
        });
    }
    for (const f of p.forwards) {
      for (const r of others) {
        const clash = r.ports.flatMap((q) => q.forwards).find((g) => forwardsClash(f, g));
        if (clash) {
          problems.push({
            path: `${path} forward ${f.proto}/${f.hostPort}`,
            value: String(f.hostPort),
            reason: `host port ${f.proto}/${f.hostPort}${f.hostAddress ? ` on ${f.hostAddress}` : ''} already forwarded to domain '${r.domain}'`,
          });
          break;
        }
      }
    }
  }
  return problems;
}
