/**
 * The real NetworkCodec: parseNetworkXml (validation) + identity kept from the previous definition
 * (uuid, bridge name, MAC — as libvirt keeps them when a network is redefined without them) +
 * applyDefaults (libvirt's defaults, a free virbrN) + formatNetworkXml.
 */
import { applyDefaults, createsBridge } from '../model/defaults.js';
import { formatNetworkXml } from '../model/format-network.js';
import { parseNetworkXml } from '../model/parse-network.js';
import type { NetworkCodec, ParseContext, Parsed } from './network-codec.js';

export const networkCodec: NetworkCodec = {
  parse(xml: string, ctx: ParseContext): Parsed {
    // An absent <uuid> comes back empty, so "given" and "generated" can be told apart.
    const { network, warnings } = parseNetworkXml(xml, { randomUuid: () => '' });
    const explicitUuid = network.uuid !== '';
    const prev = ctx.previous;
    if (prev) {
      if (!network.uuid) network.uuid = prev.uuid;
      if (!network.bridge.name && prev.bridge.name && createsBridge(network) && createsBridge(prev)) {
        network.bridge = { ...network.bridge, name: prev.bridge.name };
      }
      if (!network.mac && prev.mac) network.mac = prev.mac;
    }
    const filled = applyDefaults(network, { usedBridgeNames: ctx.usedBridges });
    const generated =
      !network.uuid || filled.mac !== network.mac || filled.bridge.name !== network.bridge.name;
    return { network: filled, explicitUuid, generated, warnings };
  },
  format(net) {
    return formatNetworkXml(net);
  },
};
