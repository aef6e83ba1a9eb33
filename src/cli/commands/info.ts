/** `virtnetctl info NAME`: one network's properties. */

import { spanPeerLine } from '../../engine/span.js';
import type { Command } from '../command.js';
import { BUS_OPTION, JSON_OPTION, json, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const infoCommand: Command = {
  name: 'info',
  summary: "Show a network's properties",
  synopsis: 'NAME',
  description: `Prints the network's name, UUID, state, autostart flag, bridge, forward mode, how it is published
into libvirt (published, off, pending: …, foreign: … — a libvirt network of that name that is not
virtnet's, left alone), for a spanning network its role and, while running, each peer (reachable or not,
the MACs behind it) and its object path on the bus. Exit 3 when there is no such network.`,
  options: { ...JSON_OPTION, ...BUS_OPTION },
  examples: ['info default', 'info default --json'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const info = await withClient(ctx, async (c) => {
      const i = await c.info(await c.pathOf(ctx.args[0]!));
      // A running span: its peers too (one bounded probe each, side by side, in vxlan mode).
      return i.span && i.active ? { ...i, peers: await c.spanPeers(i.name) } : i;
    });
    if (ctx.options.json) {
      ctx.io.stdout(json(info));
      return ExitCode.OK;
    }
    const rows: [string, string][] = [
      ['Name', info.name],
      ['UUID', info.uuid],
      ['Active', info.active ? 'yes' : 'no'],
      ['Autostart', info.autostart ? 'yes' : 'no'],
      ['Bridge', info.bridge],
      ['Forward', info.forwardMode],
      ['Libvirt', info.libvirt],
      ...(info.span ? [['Span', info.span] as [string, string]] : []),
      ...('peers' in info
        ? info.peers.map((p, i) => [i === 0 ? 'Peers' : '', spanPeerLine(p)] as [string, string])
        : []),
      ['Object', info.path],
    ];
    ctx.io.stdout(rows.map(([k, v]) => `${(k ? `${k}:` : '').padEnd(11)}${v}\n`).join(''));
    return ExitCode.OK;
  },
};
