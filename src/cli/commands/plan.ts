/**
 * `virtnetctl plan FILE.xml [--firewall nftables|iptables] [--json]`: print everything the network
 * needs — dnsmasq config, hostsfile, addn-hosts, firewall scripts, links — without touching the
 * system.
 */

import type { FirewallBackend } from '../../model/values.js';
import type { FirewallScripts } from '../../plan/firewall/scripts.js';
import type { NetworkPlan, PlanPaths } from '../../plan/index.js';
import type { SpanPlan } from '../../plan/span.js';

type SpanPlanner = typeof import('../../plan/span.js');

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
    (plan.dnsmasqArgv ? section('dnsmasq command', `${plan.dnsmasqArgv.join(' ')}\n`) : '') +
    section(`dhcp hostsfile → ${paths.hostsfile}`, plan.hostsfile) +
    section(`addn-hosts → ${paths.addnhosts}`, plan.addnhosts) +
    firewallSections(plan.firewall) +
    section('links — bring up: ip -batch -', plan.links.batch) +
    section('links — tear down: ip -batch -', plan.links.teardown) +
    section('sysctls', sysctls)
  );
}

function spanJson(span: SpanPlan, { planSpanDown, renderFdbBatch, renderSpanIpBatch }: SpanPlanner) {
  return {
    role: span.role.role,
    local: span.role.local,
    remotes: span.role.remotes,
    port: span.port,
    batch: renderSpanIpBatch(span.ipOps),
    fdb: renderFdbBatch(span.fdbOps),
    teardown: renderSpanIpBatch(planSpanDown(span.port)),
  };
}

/** The span part of a plan: this host's role and the VXLAN port. */
export function renderSpanText(
  span: SpanPlan,
  { planSpanDown, renderFdbBatch, renderSpanIpBatch }: SpanPlanner,
): string {
  const r = span.role;
  return (
    section(
      'span',
      `role: ${r.role} (this host is ${r.local}; ${r.role === 'member' ? 'no address, dnsmasq or NAT here: the gateway serves them' : 'runs the network as defined'})\nremote hosts: ${r.remotes.join(', ')}\nVXLAN port: ${span.port}\n`,
    ) +
    section('span — bring up: ip -batch -', renderSpanIpBatch(span.ipOps)) +
    section('span — flood list: bridge -batch -', renderFdbBatch(span.fdbOps)) +
    section('span — tear down: ip -batch -', renderSpanIpBatch(planSpanDown(span.port)))
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

A spanning network (<virtnet:span>) is planned for one host: the gateway by default, or the host
whose underlay address --span-host gives (a member runs only the bridge and the VXLAN port); the
plan then ends with the span's role, the VXLAN port and its flood list.

With --json prints the plan object the engine applies: the keys dnsmasqConf, hostsfile, addnhosts,
dnsmasqArgv, paths, firewall, firewallRules, links (and span for a spanning network).`,
  options: {
    firewall: {
      type: 'string',
      description: 'firewall backend to plan for',
      valueName: 'BACKEND',
      choices: ['nftables', 'iptables'],
      default: 'nftables',
    },
    json: { type: 'boolean', description: 'print one JSON object instead of text' },
    'span-host': {
      type: 'string',
      description:
        "a spanning network (<virtnet:span>): plan for the host with this underlay address (default: the span's gateway)",
      valueName: 'ADDRESS',
    },
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
    // A spanning network is planned for one of its hosts (the gateway unless --span-host names another).
    let span: SpanPlan | undefined;
    let frr: string | undefined;
    let hostNet = network;
    const spanPlanner = network.span ? await import('../../plan/span.js') : undefined;
    if (network.span && spanPlanner) {
      const { spanHostNetwork, spanRole } = await import('../../model/span.js');
      const { planSpanUp } = spanPlanner;
      const as = options['span-host'] === undefined ? network.span.gateway : String(options['span-host']);
      const role = spanRole(network, [as]);
      span = planSpanUp(network, role);
      hostNet = spanHostNetwork(network, role);
      if (network.span.mode === 'evpn') {
        const { renderEvpnBgpSnippet } = await import('../../frr/evpn.js');
        frr = renderEvpnBgpSnippet(network.span, role);
      }
    } else if (options['span-host'] !== undefined) {
      io.stderr(`${file}: --span-host: network ${network.name} has no <virtnet:span>\n`);
      return ExitCode.USAGE;
    }
    const plan = planNetwork(hostNet, { firewall: options.firewall as FirewallBackend, paths });
    if (options.json === true) {
      // The plan object itself (what the engine applies), plus the span part for a spanning network.
      const out: Record<keyof NetworkPlan, unknown> = { ...plan };
      if (span && spanPlanner)
        (out as Record<string, unknown>).span = { ...spanJson(span, spanPlanner), ...(frr ? { frr } : {}) };
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.stdout(
        renderPlanText(network.name, plan, paths) +
          (span && spanPlanner ? renderSpanText(span, spanPlanner) : '') +
          (frr
            ? section(
                'span — FRR (host level, once per host, kept by the admin; virtnet never edits it): frr.conf or vtysh',
                frr,
              )
            : ''),
      );
    }
    return ExitCode.OK;
  },
};
