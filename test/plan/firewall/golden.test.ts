/**
 * Golden files for the nftables and iptables renderers: for representative networks of every mode,
 * the exact `nft -f -` and `iptables-restore --noflush` texts (apply and remove) live under
 * test/plan/firewall/golden/. They were reviewed against libvirt's rule semantics (see rules.ts).
 * Regenerate with VIRTNET_UPDATE_GOLDEN=1 and review the diff.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderIptables } from '../../../src/plan/firewall/iptables.js';
import { renderNftables } from '../../../src/plan/firewall/nftables.js';
import { planFirewall } from '../../../src/plan/firewall/rules.js';
import { goldenNetworks } from './fixtures.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'golden');
const update = process.env.VIRTNET_UPDATE_GOLDEN === '1';

function check(file: string, actual: string): void {
  const path = join(dir, file);
  if (update || !existsSync(path)) {
    if (!update) throw new Error(`golden file missing: ${path} (run with VIRTNET_UPDATE_GOLDEN=1)`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, actual);
  }
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

describe('golden nftables and iptables texts', () => {
  for (const [name, network] of Object.entries(goldenNetworks)) {
    it(name, () => {
      const rs = planFirewall(network);
      const n = renderNftables(rs);
      check(`${name}.nft`, n.apply);
      check(`${name}.nft.remove`, n.remove);
      if (n.create !== undefined) check(`${name}.nft.create`, n.create);
      else expect(n.apply).not.toMatch(/^table .* \{$/m); // no tables: nothing to create
      const i = renderIptables(rs);
      check(`${name}.iptables-v4`, i.v4.apply);
      check(`${name}.iptables-v4.remove`, i.v4.remove);
      check(`${name}.iptables-v6`, i.v6.apply);
      check(`${name}.iptables-v6.remove`, i.v6.remove);
    });
  }
});
