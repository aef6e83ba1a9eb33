/** `virtnetctl update NETWORK COMMAND SECTION XML` — libvirt's `virsh net-update`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode, UsageError } from '../exit-codes.js';

/** virsh's command words; `add` is `add-last`, as in virsh. */
const COMMANDS: Record<string, string> = {
  add: 'add-last',
  'add-last': 'add-last',
  'add-first': 'add-first',
  delete: 'delete',
  modify: 'modify',
};

export const updateCommand: Command = {
  name: 'update',
  summary: "Change one section of a network's definition (as virsh net-update)",
  synopsis: 'NETWORK COMMAND SECTION XML',
  description: `COMMAND is add | add-first | add-last | delete | modify; SECTION one of ip-dhcp-host,
ip-dhcp-range, dns-host, dns-txt, dns-srv, forward-interface; XML the element (e.g. "<host mac='…'
ip='…'/>") or a file holding it. The changed definition is stored and, when the network is running,
applied live — libvirt's --live --config in one.`,
  options: {
    'parent-index': {
      type: 'string',
      valueName: 'N',
      description: 'which <ip> an ip-dhcp-* section belongs to (default: the first with DHCP)',
    },
    ...BUS_OPTION,
  },
  examples: [
    `update default add ip-dhcp-host "<host mac='52:54:00:aa:bb:01' ip='192.168.122.45'/>"`,
    `update default delete dns-host host.xml`,
  ],
  positionals: { min: 4, max: 4 },
  async run(ctx) {
    const [net, word, section, arg] = ctx.args as [string, string, string, string];
    const command = COMMANDS[word];
    if (!command)
      throw new UsageError(`COMMAND must be one of ${Object.keys(COMMANDS).join(', ')} (got '${word}')`);
    let parentIndex = -1;
    if (typeof ctx.options['parent-index'] === 'string') {
      parentIndex = Number(ctx.options['parent-index']);
      if (!Number.isInteger(parentIndex) || parentIndex < 0 || parentIndex > 0x7fffffff)
        throw new UsageError(
          `--parent-index expects a non-negative integer (got '${ctx.options['parent-index']}')`,
        );
    }
    const xml = arg.trimStart().startsWith('<')
      ? arg
      : await ctx.io.readFile(arg === '-' ? '/dev/stdin' : arg);
    await withClient(ctx, (c) => c.network(net, 'Update', 'ssis', [section, command, parentIndex, xml]));
    ctx.io.stdout(`Network ${net} updated (${word} ${section})\n`);
    return ExitCode.OK;
  },
};
