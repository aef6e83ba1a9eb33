/**
 * What the network hook's `port-created` / `port-deleted` mean for a virtnet network. Pure: no I/O.
 *
 * `virsh attach-interface DOMAIN network NAME` (and detach) on a running domain fires no qemu hook,
 * only libvirt's network hook, with `<networkport>` naming the owner domain and the port's MAC. The
 * same two calls also come at every domain start (`port-created` between qemu `prepare` and `start`)
 * and stop (`port-deleted` between `stopped` and `release`): then the domain's record is `prepared`
 * and the qemu hook does (or did) the work, so nothing is done here.
 *
 * Acted on only when libvirt's network NAME is virtnet's network NAME on virtnet's bridge (the
 * published bridge-mode network, or one the user defined the same way); any other libvirt network is
 * libvirt's business.
 *
 * - `port-created`, domain running (`started` record or none):
 *   - the MAC is a port of the record (the qemu hook's, or one detached before): ensure its
 *     reservation / name again with the settings recorded for it (metadata seen at prepare/start);
 *   - a new MAC: a name-only host (MAC + the domain's name when that is a valid host name), recorded
 *     as `hotplugged` (the hook cannot call libvirt for the domain's metadata).
 * - `port-deleted`, domain running: the port's reservation and forwards go; a hotplugged port leaves
 *   the record, a port the qemu hook planned stays as `unplugged` (its metadata is kept for a
 *   re-attach).
 */
import type { NetworkHookData } from '../model/domain.js';
import { checkHostname } from '../model/domain-metadata.js';
import type { Network } from '../model/network.js';
import { type DomainRecord, domainKey, type PortRecord } from './records.js';

export type HotplugPlan =
  | { action: 'none'; reason: string }
  | {
      action: 'attach';
      /** Record key of the owner domain. */
      key: string;
      domain: { name: string; uuid?: string };
      network: string;
      /** The port as it is to be recorded (from the record when known, else a new name-only one). */
      port: PortRecord;
      /** The MAC was not in the domain's record. */
      isNew: boolean;
    }
  | {
      action: 'detach';
      key: string;
      domain: { name: string; uuid?: string };
      network: string;
      mac: string;
    };

/** The virtnet network a libvirt network of the hook call stands for, or why there is none. */
export function virtnetNetworkOf(
  data: NetworkHookData,
  networks: readonly Network[],
): { net: Network } | { reason: string } {
  const net = networks.find((n) => n.name === data.network.name);
  if (!net) return { reason: `no virtnet network '${data.network.name}'` };
  const bridge = data.network.bridge ?? data.port?.plug?.bridge;
  if (!net.bridge.name || bridge !== net.bridge.name)
    return {
      reason: `libvirt's network '${data.network.name}' is on bridge '${bridge ?? '(none)'}', not virtnet's '${net.bridge.name ?? '(none)'}'`,
    };
  return { net };
}

/** A name-only host needs the domain's name to be a valid host name; otherwise no name at all. */
function hostnameFor(domainName: string): string | undefined {
  try {
    return checkHostname(domainName);
  } catch {
    return undefined;
  }
}

/**
 * Decide what a `port-created` / `port-deleted` call does. `record` is the owner's record (by
 * `domainKey` of the owner's name and uuid), if any.
 */
export function planHotplug(
  operation: string,
  data: NetworkHookData,
  networks: readonly Network[],
  record: DomainRecord | undefined,
): HotplugPlan {
  if (operation !== 'port-created' && operation !== 'port-deleted')
    return { action: 'none', reason: `not a port operation (${operation})` };
  const owner = data.port?.owner;
  const mac = data.port?.mac;
  if (!owner || !mac) return { action: 'none', reason: 'the port names no owner domain or no MAC' };
  const found = virtnetNetworkOf(data, networks);
  if (!('net' in found)) return { action: 'none', reason: found.reason };
  const network = found.net.name;
  const domain: { name: string; uuid?: string } = { name: owner.name };
  if (owner.uuid) domain.uuid = owner.uuid;
  const key = domainKey(domain);
  if (record?.phase === 'prepared')
    return {
      action: 'none',
      reason: `domain '${owner.name}' is starting or stopping: its qemu hook handles the port`,
    };
  const known = record?.ports.find((p) => p.kind !== 'network' && p.network === network && p.mac === mac);

  if (operation === 'port-deleted') {
    if (!known || known.unplugged)
      return { action: 'none', reason: `no port ${mac} of domain '${owner.name}' on '${network}'` };
    return { action: 'detach', key, domain, network, mac };
  }

  if (known) {
    const { unplugged: _u, ...port } = known;
    return { action: 'attach', key, domain, network, port, isNew: false };
  }
  const port: PortRecord = {
    index: -1,
    kind: 'bridge',
    network,
    mac,
    bridge: found.net.bridge.name!,
    forwards: [],
    hotplugged: true,
  };
  const hostname = hostnameFor(owner.name);
  if (hostname) port.hostname = hostname;
  return { action: 'attach', key, domain, network, port, isNew: true };
}
