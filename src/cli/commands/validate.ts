/**
 * `virtnetctl validate FILE.xml`: check a libvirt network XML (or a domain XML with virtnet metadata,
 * or a network hook's stdin) without touching the system. Exit 0 when valid; otherwise one line per
 * problem on stderr (element path, reason, value) and exit 1. Ignored elements are warnings.
 */

import { ValidationError } from '../../errors.js';
import type { Command } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { reportError } from '../report.js';

/** The name of the document's root element (after the XML declaration, comments and PIs). */
export function rootElementName(xml: string): string | undefined {
  const m = /^\uFEFF?(?:\s|<\?[\s\S]*?\?>|<!--[\s\S]*?-->)*<([A-Za-z_][\w.:-]*)/.exec(xml);
  return m?.[1];
}

/** Validate one document; returns a one-line summary and the warnings. Throws ValidationError. */
export async function validateDocument(xml: string): Promise<{ summary: string; warnings: string[] }> {
  // The model is loaded here, not at start-up (the other commands do not need it).
  const { parseDomainXml, parseNetworkHookData } = await import('../../model/domain.js');
  const { parseNetworkXml } = await import('../../model/parse-network.js');
  const root = rootElementName(xml);
  if (root === 'domain') {
    const d = parseDomainXml(xml);
    const meta = d.virtnet
      ? `, virtnet metadata for ${d.virtnet.interfaces.length}`
      : ', no virtnet metadata';
    return {
      summary: `valid domain '${d.name}' (${d.interfaces.length} interface${d.interfaces.length === 1 ? '' : 's'}${meta})`,
      warnings: d.warnings,
    };
  }
  if (root === 'hookData') {
    const h = parseNetworkHookData(xml);
    return { summary: `valid network hook data for network '${h.network.name}'`, warnings: [] };
  }
  const { network, warnings } = parseNetworkXml(xml);
  const mode = network.forward.mode === 'none' ? 'isolated' : network.forward.mode;
  const s = network.span;
  const span = s
    ? `, spans ${s.peers.length + 1} hosts: ${s.mode} VNI ${s.vni}, gateway ${s.gateway}, members ${s.peers.join(', ')}`
    : '';
  return { summary: `valid network '${network.name}' (${mode}${span})`, warnings };
}

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check a network XML file (or a domain XML with virtnet metadata)',
  synopsis: 'FILE.xml',
  description: `Parses and validates FILE.xml exactly as virtnetd would, without touching the system.
The root element decides what it is checked as: <network> (a libvirt network definition),
<domain> (a libvirt domain; its virtnet <metadata> is checked) or <hookData> (a network hook's stdin).

Valid: prints a one-line summary and exits 0; elements virtnet accepts but does not apply are listed
as warnings on stderr. Invalid: prints one line per problem on stderr — the element path, the reason
and the offending value — and exits 1.`,
  options: {},
  examples: [
    'validate /etc/virtnet/networks/default.xml',
    'validate domain.xml   # a domain XML with virtnet metadata',
  ],
  positionals: { min: 1, max: 1 },
  async run({ args, io }) {
    const file = args[0]!;
    const xml = await io.readFile(file);
    try {
      const { summary, warnings } = await validateDocument(xml);
      for (const w of warnings) io.stderr(`${file}: warning: ${w}\n`);
      io.stdout(`${file}: ${summary}\n`);
      return ExitCode.OK;
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      reportError(io, e, file);
      return ExitCode.FAILURE;
    }
  },
};
