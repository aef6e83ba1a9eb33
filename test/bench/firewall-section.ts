/**
 * The firewall step against the usual alternative: the rule set of a NAT network (libvirt's `default`)
 * applied as ONE transaction (what virtnet does: `nft -f -`, or `iptables-restore --noflush`) versus
 * one command per rule (what libvirt does: `nft … insert rule …` per rule with libvirt ≥ 10's nftables
 * layout, `iptables --insert …` per rule with libvirt ≤ 9's iptables layout, base chains included; the
 * argv come from test/conformance/libvirt-args.ts, the conformance renderer of libvirt's own command
 * log). Runs INSIDE the bench's network namespace (run.ts: `--inner firewall`); every run starts from
 * an empty ruleset (cleanup not timed).
 */
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { renderIptables } from '../../src/plan/firewall/iptables.js';
import { renderNftables } from '../../src/plan/firewall/nftables.js';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import { libvirtArgv, libvirtBaseArgv } from '../conformance/libvirt-args.js';
import { DEFAULT_XML, mustRun, runCmd, type Sample, time } from './lib.js';

async function seq(cmds: string[][]): Promise<void> {
  for (const c of cmds) await mustRun(c);
}

export async function firewallSection(runs: number): Promise<Sample[]> {
  const out: Sample[] = [];
  const net = parseNetworkXml(DEFAULT_XML, { fillDefaults: true }).network;
  const rs = planFirewall(net);

  // nftables: virtnet's one transaction vs libvirt ≥ 10's per-rule commands (ip family: the network
  // has IPv4 only; libvirt's base commands for ip6 and its `nft list` probes left out).
  const nft = renderNftables(rs);
  const nftPerRule = [
    ...libvirtBaseArgv('nftables').filter((a) => a[1] !== 'list' && !a.includes('ip6')),
    ...libvirtArgv(rs, 'nftables').filter((a) => !a.includes('ip6')),
  ];
  // libvirt's rules name the bridge with `iif`/`oif`, which nft resolves at once: the bridge exists
  // when a network's rules go in, here too.
  await mustRun(['ip', 'link', 'add', net.bridge.name ?? 'virbr0', 'type', 'bridge']);
  const nftClean = () => runCmd(['nft', 'flush', 'ruleset']);
  await nftClean();
  const nftTx: number[] = [];
  const nftCmds: number[] = [];
  // One warm-up of each.
  await mustRun(['nft', '-f', '-'], { input: nft.create ?? nft.apply });
  await nftClean();
  await seq(nftPerRule);
  await nftClean();
  for (let r = 0; r < runs; r++) {
    nftTx.push(await time(() => mustRun(['nft', '-f', '-'], { input: nft.create ?? nft.apply })));
    await nftClean();
    nftCmds.push(await time(() => seq(nftPerRule)));
    await nftClean();
  }
  const nftRules = nft.apply
    .split('\n')
    .filter((l) => /^\s*(counter|iifname|oifname|ip |ip6 |meta |ct )/.test(l)).length;
  out.push({
    key: 'fw.nft.tx',
    what: 'firewall: one `nft -f -` transaction (a fresh network: create, no delete)',
    unit: 'ms',
    xs: nftTx,
    note: `${nftRules} rules`,
  });
  out.push({
    key: 'fw.nft.cmds',
    what: 'firewall: `nft` per rule',
    unit: 'ms',
    xs: nftCmds,
    note: `${nftPerRule.length} commands`,
  });

  // iptables: iptables-restore --noflush vs `iptables --insert` per rule (IPv4 only: the network has
  // no IPv6), for the system's iptables (iptables-nft on Debian 12) and for iptables-legacy.
  const ipt = renderIptables(rs);
  for (const [label, bin, restore] of [
    ['iptables', 'iptables', 'iptables-restore'],
    ['iptables-legacy', 'iptables-legacy', 'iptables-legacy-restore'],
  ] as const) {
    if ((await runCmd([bin, '--version'])).code !== 0) continue;
    const perRule = [
      ...libvirtBaseArgv('iptables').filter((a) => a[0] === 'iptables' && !a.includes('--list-rules')),
      ...libvirtArgv(rs, 'iptables').filter((a) => a[0] === 'iptables'),
    ].map((a) => [bin, ...a.slice(1)]);
    const clean = async () => {
      for (const t of ['filter', 'nat', 'mangle']) {
        await runCmd([bin, '-w', '-t', t, '-F']);
        await runCmd([bin, '-w', '-t', t, '-X']);
      }
    };
    await clean();
    await mustRun([restore, '-w', '--noflush'], { input: ipt.v4.apply });
    await clean();
    await seq(perRule);
    await clean();
    const tx: number[] = [];
    const cmds: number[] = [];
    for (let r = 0; r < runs; r++) {
      tx.push(await time(() => mustRun([restore, '-w', '--noflush'], { input: ipt.v4.apply })));
      await clean();
      cmds.push(await time(() => seq(perRule)));
      await clean();
    }
    const n = ipt.v4.apply.split('\n').filter((l) => l.startsWith('-A ')).length;
    out.push({
      key: `fw.${label}.tx`,
      what: `firewall: one \`${restore} --noflush\``,
      unit: 'ms',
      xs: tx,
      note: `${n} rules`,
    });
    out.push({
      key: `fw.${label}.cmds`,
      what: `firewall: \`${bin}\` per rule`,
      unit: 'ms',
      xs: cmds,
      note: `${perRule.length} commands`,
    });
  }
  return out;
}
