import { describe, expect, it } from 'vitest';
import type { Firewall } from '../../src/firewall/types.js';
import type { DomainForwards } from '../../src/hooks/context.js';
import { FirewallForwarder } from '../../src/hooks/forwarder.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import type { FirewallScripts } from '../../src/plan/firewall/scripts.js';

const net = parseNetworkXml(
  `<network><name>fwd</name><forward mode='nat'/><bridge name='vbr-fwd'/><ip address='10.66.0.1' prefix='24'/></network>`,
).network;

const fw: DomainForwards = {
  key: 'u1',
  domain: 'web',
  rules: [
    {
      proto: 'tcp',
      family: 'ipv4',
      hostPort: 8080,
      guestPort: 80,
      guestIp: '10.66.0.10',
      network: 'fwd',
      bridge: 'vbr-fwd',
    },
  ],
};

/** An nftables driver that keeps the domain's table as the kernel would: `create` fails when it exists. */
function fakeNft() {
  const tables = new Set<string>();
  const scripts: string[] = [];
  const firewall: Pick<Firewall, 'backend' | 'apply' | 'remove'> = {
    backend: 'nftables',
    async apply(_net: string, s: FirewallScripts) {
      if (s.backend !== 'nftables') throw new Error('wrong backend');
      scripts.push(s.nft.apply);
      const created = [...s.nft.apply.matchAll(/^create table (\S+ \S+)$/gm)].map((m) => m[1]!);
      if (created.some((t) => tables.has(t))) throw new Error('Error: Could not process rule: File exists');
      for (const m of s.nft.apply.matchAll(/^table (\S+ \S+) \{$/gm)) tables.add(m[1]!);
    },
    async remove(_net: string, s: FirewallScripts) {
      if (s.backend !== 'nftables') throw new Error('wrong backend');
      for (const m of s.nft.remove.matchAll(/^delete table (\S+ \S+)$/gm)) tables.delete(m[1]!);
    },
  };
  return { firewall, tables, scripts };
}

describe('FirewallForwarder (nftables)', () => {
  it('installs a domain’s first forwards without deleting anything, and replaces them when re-applied', async () => {
    const nft = fakeNft();
    const f = new FirewallForwarder({
      firewall: nft.firewall,
      networks: () => [net],
      writeSysctl: async () => {},
    });
    await f.apply(fw);
    expect(nft.scripts).toHaveLength(1);
    expect(nft.scripts[0]).toMatch(/^create table ip virtnet_pf_web_[0-9a-f]{8}\n/);
    expect(nft.scripts[0]).not.toContain('delete');
    expect(nft.tables.size).toBe(1);

    // Again (reconnect, a restarted daemon): the create fails as a whole, the replacing script runs.
    await f.apply(fw);
    expect(nft.scripts).toHaveLength(3);
    expect(nft.scripts[2]).toContain('delete table ip virtnet_pf_web_');
    expect(nft.tables.size).toBe(1);

    await f.remove(fw);
    expect(nft.tables.size).toBe(0);
    await f.apply(fw);
    expect(nft.scripts).toHaveLength(4);
    expect(nft.scripts[3]).toMatch(/^create table/);
  });

  it('a replacing script that fails too is reported', async () => {
    const nft = fakeNft();
    nft.firewall.apply = async () => {
      throw new Error('nft: Could not process rule: Operation not permitted');
    };
    const f = new FirewallForwarder({
      firewall: nft.firewall,
      networks: () => [net],
      writeSysctl: async () => {},
    });
    await expect(f.apply(fw)).rejects.toThrow(/Operation not permitted/);
  });
});
