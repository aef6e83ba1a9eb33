/**
 * Which firewall backend to use: nftables by default when `nft` works, iptables when asked for or
 * when nft is missing. The choice comes with its reason (for the log and `virtnetctl status`).
 */
import type { CommandRunner } from '../exec/runner.js';
import { IptablesFirewall } from './iptables.js';
import { NftablesFirewall } from './nftables.js';
import type { Firewall, FirewallChoice } from './types.js';

export type FirewallRequest = 'auto' | 'nftables' | 'iptables';

async function works(runner: CommandRunner, argv: string[]): Promise<string | undefined> {
  try {
    const r = await runner.run({ step: 'firewall: detect backend', argv, allowFail: true });
    return r.exitCode === 0 ? undefined : r.stderr.trim() || `exit ${r.exitCode}`;
  } catch (e) {
    return (e as Error).message;
  }
}

export async function chooseFirewall(
  runner: CommandRunner,
  requested: FirewallRequest,
): Promise<FirewallChoice> {
  if (requested === 'iptables') {
    const why = await works(runner, ['iptables-restore', '--version']);
    if (why) throw new Error(`firewall: iptables requested but iptables-restore does not work: ${why}`);
    return { backend: 'iptables', reason: 'iptables requested' };
  }
  // `nft list tables` talks to the kernel: it fails when nft is missing or nf_tables is unavailable.
  const nftWhy = await works(runner, ['nft', 'list', 'tables']);
  if (!nftWhy) {
    return {
      backend: 'nftables',
      reason: requested === 'nftables' ? 'nftables requested' : 'nft works (default)',
    };
  }
  if (requested === 'nftables')
    throw new Error(`firewall: nftables requested but nft does not work: ${nftWhy}`);
  const iptWhy = await works(runner, ['iptables-restore', '--version']);
  if (iptWhy) throw new Error(`firewall: neither nft (${nftWhy}) nor iptables-restore (${iptWhy}) works`);
  return { backend: 'iptables', reason: `nft does not work (${nftWhy}): using iptables` };
}

export function makeFirewall(runner: CommandRunner, choice: FirewallChoice): Firewall {
  return choice.backend === 'nftables' ? new NftablesFirewall(runner) : new IptablesFirewall(runner);
}

/** Choose and build the driver in one go. */
export async function detectFirewall(
  runner: CommandRunner,
  requested: FirewallRequest,
): Promise<{ firewall: Firewall; choice: FirewallChoice }> {
  const choice = await chooseFirewall(runner, requested);
  return { firewall: makeFirewall(runner, choice), choice };
}
