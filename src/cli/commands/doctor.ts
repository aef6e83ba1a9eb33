/** `virtnetctl doctor [NAME]`: what on this host blocks or could block a network's traffic. */

import type { Command } from '../command.js';
import { BUS_OPTION, JSON_OPTION, json, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

interface Finding {
  network: string;
  check: string;
  status: string;
  detail: string;
  fix: string;
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Say what on this host blocks or could block a running network',
  synopsis: '[NAME]',
  description: `For the running network NAME (every running network without NAME), asks virtnetd what on this
host blocks or could block its traffic: iptables chains of other programs that can drop (Docker, ufw)
and whether virtnet's accepts are at their head, other nftables tables dropping by policy, the bridge's
firewalld zone, ip_forward, routes or addresses overlapping the network, inotify instances left, other
DHCP servers. Each finding is ok, fixed (virtnet handles it), warning or problem, with the command to
run. Exit 1 when a problem was found.`,
  options: { ...JSON_OPTION, ...BUS_OPTION },
  examples: ['doctor', 'doctor default', 'doctor --json'],
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    // The client module (and the D-Bus library) only now: a bus command loads them when it runs.
    const { plain } = await import('../bus-client.js');
    const findings = await withClient(ctx, async (c) => {
      const names = ctx.args[0] ? [ctx.args[0]] : (await c.list()).filter((n) => n.active).map((n) => n.name);
      const out: Finding[] = [];
      for (const network of names) {
        const [rows] = await c.network(network, 'Doctor');
        for (const [check, status, detail, fix] of plain(rows) as [string, string, string, string][])
          out.push({ network, check, status, detail, fix });
      }
      return out;
    });
    const problem = findings.some((f) => f.status === 'problem');
    if (ctx.options.json) {
      ctx.io.stdout(json(findings));
      return problem ? ExitCode.FAILURE : ExitCode.OK;
    }
    if (!findings.length) ctx.io.stdout('no running network\n');
    let last = '';
    for (const f of findings) {
      if (f.network !== last) ctx.io.stdout(`${last ? '\n' : ''}network ${f.network}:\n`);
      last = f.network;
      ctx.io.stdout(`  ${f.status.padEnd(8)}${f.check.padEnd(11)}${f.detail}\n`);
      if (f.fix)
        ctx.io.stdout(
          `${f.fix.replace(/^/gm, '            fix: ').replace(/\n {12}fix: /g, '\n                 ')}\n`,
        );
    }
    return problem ? ExitCode.FAILURE : ExitCode.OK;
  },
};
