/**
 * Conflict checks of a start: everything that would make it fail half-way, checked before anything
 * is touched — against the networks this engine runs or is starting (in memory, no await, so an
 * admission is atomic) and against the host (links, routes, IPv6 forwarding; read-only).
 */
import { ConflictError, NotFoundError } from '../errors.js';
import { subnetsOverlap } from '../model/ip.js';
import type { Network } from '../model/network.js';
import { createsBridge, planSysctls } from '../plan/links.js';
import { spanPortName } from '../plan/span.js';
import type { HostProbe } from './host.js';
import type { SysctlIo } from './sysctl.js';

/** A network this engine runs or has admitted, by its bridge. */
export interface RunningNetwork {
  bridge: string | undefined;
  network: Network;
}

/** Against the networks this engine runs or is starting: in memory, no await (admission is atomic). */
export function checkEngineConflicts(net: Network, running: readonly RunningNetwork[]): void {
  const br = net.bridge.name;
  if (!br) throw new ConflictError(`network ${net.name}: no bridge name`);
  const others = running.filter((o) => o.network.name !== net.name);
  for (const o of others) {
    if (net.span && o.network.span?.vni === net.span.vni) {
      throw new ConflictError(
        `network ${net.name}: VXLAN VNI ${net.span.vni} is already used by network ${o.network.name}`,
      );
    }
    if (o.bridge === br) {
      throw new ConflictError(
        `network ${net.name}: bridge ${br} is already used by network ${o.network.name}`,
      );
    }
    for (const ip of net.ips) {
      for (const oip of o.network.ips) {
        if (ip.family === oip.family && subnetsOverlap(ip.address, ip.prefix, oip.address, oip.prefix)) {
          throw new ConflictError(
            `network ${net.name}: subnet ${ip.address}/${ip.prefix} overlaps network ${o.network.name} (${oip.address}/${oip.prefix})`,
          );
        }
      }
    }
  }
}

/** Against the host (links, routes): read-only, so it runs outside the admission lock. */
export async function checkHostConflicts(net: Network, probe: HostProbe, io: SysctlIo): Promise<void> {
  const br = net.bridge.name;
  if (!br) throw new ConflictError(`network ${net.name}: no bridge name`);
  if (createsBridge(net)) {
    if (await probe.linkExists(br)) {
      throw new ConflictError(`network ${net.name}: an interface named ${br} already exists`);
    }
  } else if (!(await probe.isBridge(br))) {
    throw new NotFoundError(`network ${net.name}: host bridge ${br} does not exist (forward mode bridge)`);
  }
  if (net.span && (await probe.linkExists(spanPortName(net.span.vni)))) {
    throw new ConflictError(
      `network ${net.name}: an interface named ${spanPortName(net.span.vni)} (the span's VXLAN port) already exists`,
    );
  }
  const enslave = net.forward.mode === 'bridge' ? net.bridge.enslave : undefined;
  if (enslave) {
    if (!(await probe.linkExists(enslave))) {
      throw new NotFoundError(`network ${net.name}: interface ${enslave} to enslave does not exist`);
    }
    const master = await probe.masterOf(enslave);
    if (master) throw new ConflictError(`network ${net.name}: ${enslave} is already a port of ${master}`);
  }
  for (const dev of [net.forward.dev, ...net.forward.interfaces]) {
    if (dev && !(await probe.linkExists(dev))) {
      throw new NotFoundError(`network ${net.name}: forward dev ${dev} does not exist`);
    }
  }
  // Like libvirt (virNetDevIPCheckIPv6Forwarding): switching IPv6 forwarding on makes the kernel
  // ignore RAs on interfaces with accept_ra=1, so a default route learned from RAs would expire.
  // Refuse unless those interfaces have accept_ra=2.
  if (planSysctls(net).some((x) => x.key === 'net.ipv6.conf.all.forwarding')) {
    const forwarding = await io.read('net.ipv6.conf.all.forwarding').catch(() => '0');
    if (forwarding !== '1') {
      for (const dev of await probe.raDefaultRouteDevs()) {
        const ra = await io.read(`net.ipv6.conf.${dev}.accept_ra`).catch(() => '');
        if (ra !== '2') {
          throw new ConflictError(
            `network ${net.name}: enabling IPv6 forwarding would drop ${dev}'s default route learned from router advertisements; set net.ipv6.conf.${dev}.accept_ra=2 first`,
          );
        }
      }
    }
  }
  if (net.ips.length > 0) {
    const routes = await probe.routes();
    for (const ip of net.ips) {
      for (const r of routes) {
        if (r.family !== ip.family || r.prefix === 0 || r.dev === 'lo') continue;
        if (
          r.family === 'ipv6' &&
          (r.prefix === 128 || r.dest.startsWith('fe80:') || r.dest.startsWith('ff00:'))
        )
          continue;
        if (subnetsOverlap(ip.address, ip.prefix, r.dest, r.prefix)) {
          throw new ConflictError(
            `network ${net.name}: subnet ${ip.address}/${ip.prefix} overlaps the route to ${r.dest}/${r.prefix} on ${r.dev}`,
          );
        }
      }
    }
  }
}

// --- dnsmasq -----------------------------------------------------------------------------------
