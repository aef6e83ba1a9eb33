import { describe, expect, it } from 'vitest';
import { type CommandRunner, DryRunRunner } from '../../src/exec/runner.js';
import { CompatLayer } from '../../src/firewall/compat.js';
import { compatRuleSet, NFT_COMPAT_TABLES } from '../../src/plan/firewall/compat.js';
import { goldenNetworks } from '../plan/firewall/fixtures.js';

const none = { ipv4: '/nonexistent/ip_tables_names', ipv6: '/nonexistent/ip6_tables_names' };

describe('CompatLayer reads (dry run)', () => {
  it('networks checked side by side share the reads of the foreign tables', async () => {
    const d = new DryRunRunner();
    // Each command takes a little while, as a real one does.
    const slow: CommandRunner = {
      run: async (req) => {
        await new Promise((r) => setTimeout(r, 5));
        return d.run(req);
      },
    };
    const layer = new CompatLayer(slow, undefined, none);
    const rs = compatRuleSet(goldenNetworks['nat-default']!)!;
    await Promise.all(Array.from({ length: 20 }, (_, i) => layer.ensure({ ...rs, network: `n${i}` })));
    const count = (prefix: string) => d.commandLines().filter((l) => l.startsWith(prefix)).length;
    // iptables-nft's filter table once per family (plus the tool probe), each native table once.
    expect(count('iptables-nft-save -t filter')).toBe(1);
    expect(count('iptables-nft-save --version')).toBe(1);
    // One read of the native tables: each of them in both families. Twenty networks: at most two.
    const perRead = NFT_COMPAT_TABLES.size * 2;
    const first = count('nft -j list table');
    expect(first).toBeGreaterThanOrEqual(perRead);
    expect(first).toBeLessThanOrEqual(2 * perRead);
    // A later check reads again (nothing is cached across checks).
    await layer.ensure(rs);
    expect(count('iptables-nft-save -t filter')).toBe(2);
    expect(count('nft -j list table')).toBe(first + perRead);
  });
});
