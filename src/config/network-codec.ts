/**
 * What the daemon needs from the model layer to turn network XML into a `Network` and back. The real
 * codec (codec.ts) is parseNetworkXml + applyDefaults + formatNetworkXml; tests may pass their own.
 */
import type { Network } from '../model/network.js';

export interface ParseContext {
  /** The definition being replaced (same name): its uuid, bridge name and MAC are kept when the XML omits them. */
  previous?: Network;
  /** Bridge names of the other networks (a generated bridge name avoids them). */
  usedBridges: string[];
}

export interface Parsed {
  network: Network;
  /** The XML gave a <uuid> (as opposed to one being generated or inherited). */
  explicitUuid: boolean;
  /**
   * Identity the XML left out was generated (uuid, MAC, bridge name): the definition must be written
   * back, as libvirt's net-define does, or the next load would generate different values.
   */
  generated: boolean;
  warnings: string[];
}

export interface NetworkCodec {
  /** Parse, validate and fill defaults. Throws only ValidationError. */
  parse(xml: string, ctx: ParseContext): Parsed;
  /** The XML written to the config dir and returned by GetXML. */
  format(net: Network): string;
}
