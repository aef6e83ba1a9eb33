/**
 * `virtnetctl plan FILE.xml [--firewall nftables|iptables] [--json]`: print everything the network
 * needs — dnsmasq config, hostsfile, addn-hosts, firewall scripts, links — without touching the
 * system.
 */

import type { FirewallBackend } from '../../engine/types.js';
import type { FirewallScripts } from '../../firewall/types.js';
import type { NetworkPlan, PlanPaths } from '../../plan/index.js';
import type { Command } from '../command.js';
import { ExitCode } from '../exit-codes.js';

export const DEFAULT_RUN_DIR = '/run/virtnet';

function section(title: string, body: string): string {
  const text = body === '' ? '(empty)\n' : body.endsWith('\n') ? body : `${body}\n`;
  return `### ${title}\n${text}\n`;
}

function firewallSections(fw: FirewallScripts): string {
  if (fw.backend === 'nftables') {
    return (
      section('firewall (nftables) — apply: nft -f -', fw.nft.apply) +
      section('firewall (nftables) — remove: nft -f -', fw.nft.remove)
    );
  }
  return (
    section('firewall (iptables) — apply IPv4: iptables-restore --noflush', fw.iptables.v4.apply) +
    section('firewall (iptables) — apply IPv6: ip6tables-restore --noflush', fw.iptables.v6.apply) +
    section('firewall (iptables) — remove IPv4: iptables-restore --noflush', fw.iptables.v4.remove) +
    section('firewall (iptables) — remove IPv6: ip6tables-restore --noflush', fw.iptables.v6.remove)
  );
}

/** The human-readable form of a plan. */
export function renderPlanText(name: string, plan: NetworkPlan, paths: PlanPaths): string {
  const sysctls = [...plan.links.sysctls, ...plan.links.bridgeSysctls]
    .map((s) => `${s.key} = ${s.value}\n`)
    .join('');
  return (
    `# virtnet plan for network '${name}' (nothing was changed on this system)\n\n` +
    section(`dnsmasq config → ${paths.conf}`, plan.dnsmasqConf ?? '(no dnsmasq for this network)\n') +
    section(`dhcp hostsfile → ${paths.hostsfile}`, plan.hostsfile) +
    section(`addn-hosts → ${paths.addnhosts}`, plan.addnhosts) +
    firewallSections(plan.firewall) +
    section('links — bring up: ip -batch -', plan.links.batch) +
    section('links — tear down: ip -batch -', plan.links.teardown) +
    section('sysctls', sysctls)
  );
}

export const planCommand: Command = {
  name: 'plan',
  summary: 'Print everything a network needs (dnsmasq, firewall, links) without touching the system',
  synopsis: 'FILE.xml',
  description: `Parses the libvirt network definition in FILE.xml, fills in libvirt's defaults (a bridge name,
a MAC address and a UUID are generated when absent, so those parts differ between runs) and prints
what starting the network would do: the dnsmasq config, DHCP hostsfile and addn-hosts files, the
firewall scripts for the chosen backend (apply and remove), the links as 'ip -batch' text and the
sysctls. Nothing is changed on the system.

With --json prints one JSON object with the keys dnsmasqConf, hostsfile, addnhosts, firewall, links.`,
  options: {
    firewall: {
      type: 'string',
      description: 'firewall backend to plan for',
      valueName: 'BACKEND',
      choices: ['nftables', 'iptables'],
      default: 'nftables',
    },
    json: { type: 'boolean', description: 'print one JSON object instead of text' },
    'run-dir': {
      type: 'string',
      description: "virtnetd's runtime directory; dnsmasq files are planned under DIR/dnsmasq",
      valueName: 'DIR',
      default: DEFAULT_RUN_DIR,
    },
  },
  examples: [
    'plan packaging/default.xml',
    'plan packaging/default.xml --firewall iptables',
    'plan packaging/default.xml --json',
  ],
  positionals: { min: 1, max: 1 },
  async run({ args, options, io }) {
    const file = args[0]!;
    const xml = await io.readFile(file);
    // The model and planner are loaded here, not at start-up (the bus commands do not need them).
    const { parseNetworkXml } = await import('../../model/parse-network.js');
    const { defaultPlanPaths, planNetwork } = await import('../../plan/index.js');
    const { network, warnings } = parseNetworkXml(xml, { fillDefaults: true });
    for (const w of warnings) io.stderr(`${file}: warning: ${w}\n`);
    const paths = defaultPlanPaths(`${String(options['run-dir'])}/dnsmasq`, network.name);
    const plan = planNetwork(network, { firewall: options.firewall as FirewallBackend, paths });
    if (options.json === true) {
      const out: Record<keyof NetworkPlan, unknown> = {
        dnsmasqConf: plan.dnsmasqConf,
        hostsfile: plan.hostsfile,
        addnhosts: plan.addnhosts,
        firewall: plan.firewall,
        links: plan.links,
      };
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.stdout(renderPlanText(network.name, plan, paths));
    }
    return ExitCode.OK;
  },
};
