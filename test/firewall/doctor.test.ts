/** `virtnetctl doctor`'s judgement (src/firewall/doctor.ts diagnose) on hand-made host facts. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DoctorFacts, diagnose } from '../../src/firewall/doctor.js';
import { type NftBaseChain, renderCompat } from '../../src/plan/firewall/compat.js';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import { projectRoot } from '../helpers/shared.js';
import { dhcp4, ip4, nat, net } from '../plan/firewall/fixtures.js';

const network = net({ forward: nat(), ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })] });
const EMPTY = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
const docker = readFileSync(join(projectRoot, 'test/firewall/fixtures/docker28.rules'), 'utf8')
  .split('*nat')[0]!
  .replace('-I FORWARD 1 -j DOCKER-USER', '-A FORWARD -j DOCKER-USER');

function facts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    net: network,
    iptables: [{ variant: 'nft', family: 'ipv4', save: EMPTY }],
    nftChains: [],
    firewalld: { running: false, zone: '' },
    ipForward: { ipv4: '1', ipv6: '0' },
    routes: [
      { dst: '192.168.122.0/24', dev: 'virbr0' },
      { dst: 'default', dev: 'eth0' },
    ],
    addrs: [{ ifname: 'virbr0', local: '192.168.122.1', prefixlen: 24 }],
    inotify: { limit: 128, used: 10 },
    dhcpServers: [],
    ...over,
  };
}

const by = (f: ReturnType<typeof diagnose>, check: string) => f.filter((x) => x.check === check);

describe('doctor: diagnose', () => {
  it('a clean host: every check ok, nothing to run', () => {
    const f = diagnose(facts());
    expect(f.every((x) => x.status === 'ok' && x.fix === '')).toBe(true);
    expect(f.map((x) => x.check)).toEqual([
      'iptables',
      'nftables',
      'firewalld',
      'ip_forward',
      'routes',
      'inotify',
      'dhcp',
    ]);
  });

  it("Docker's FORWARD DROP: a problem with the restore to run, fixed once the layer is in", () => {
    const [p] = by(
      diagnose(facts({ iptables: [{ variant: 'nft', family: 'ipv4', save: docker }] })),
      'iptables',
    );
    expect(p).toMatchObject({ status: 'problem' });
    expect(p!.detail).toMatch(/FORWARD \(policy DROP\)/);
    expect(p!.fix).toMatch(/^iptables-nft-restore --noflush <<'EOF'\n\*filter\n/);
    expect(p!.fix).toContain('-I FORWARD 2 -j VN-');
    // The same save with the layer applied (as the fix would): fixed.
    const text = renderCompat(network.name, planFirewall(network), 'ipv4', docker).text;
    const name = /-I FORWARD 2 -j (\S+)/.exec(text)![1]!;
    const rules = text.split('\n').filter((l) => l.startsWith(`-A ${name} `));
    const applied = docker
      .replace(':DOCKER-USER - [0:0]', `:DOCKER-USER - [0:0]\n:${name} - [0:0]`)
      .replace('-A FORWARD -j DOCKER-USER', `-A FORWARD -j DOCKER-USER\n-A FORWARD -j ${name}`)
      .replace('COMMIT', `${rules.join('\n')}\nCOMMIT`);
    const [q] = by(
      diagnose(facts({ iptables: [{ variant: 'nft', family: 'ipv4', save: applied }] })),
      'iptables',
    );
    expect(q).toMatchObject({ status: 'fixed', fix: '' });
  });

  it('a foreign nft table dropping by policy on forward: a problem with the nft commands', () => {
    const [p] = by(
      diagnose(
        facts({
          nftChains: [
            { family: 'inet', table: 'filter', name: 'forward', hook: 'forward', policy: 'drop' },
            { family: 'ip', table: 'virtnet_x', name: 'forward', hook: 'forward', policy: 'accept' },
            { family: 'ip', table: 'filter', name: 'FORWARD', hook: 'forward', policy: 'drop' },
          ],
        }),
      ),
      'nftables',
    );
    expect(p).toMatchObject({ status: 'problem' });
    expect(p!.fix).toBe(
      'nft insert rule inet filter forward iifname "virbr0" accept; nft insert rule inet filter forward oifname "virbr0" accept',
    );
  });

  it("Docker 29's filter-FORWARD with policy drop: a problem until virtnet's accepts head it, then fixed", () => {
    const chain = {
      family: 'ip',
      table: 'docker-bridges',
      name: 'filter-FORWARD',
      hook: 'forward',
      policy: 'drop',
    };
    const bare: NftBaseChain = { ...chain, rules: [{ handle: 5 }, { handle: 6 }] };
    const [p] = by(diagnose(facts({ nftChains: [chain], nftRules: [bare] })), 'nftables');
    expect(p).toMatchObject({ status: 'problem' });
    expect(p!.detail).toMatch(/accepts missing/);
    expect(p!.fix).toMatch(
      /^nft -f - <<'EOF'\ninsert rule ip docker-bridges filter-FORWARD .* comment "virtnet:default:ip:\d+:/,
    );
    // As nft leaves the chain after that text: ours first, in order, then Docker's.
    const ours = [...p!.fix.matchAll(/comment "([^"]+)"/g)].map((m) => m[1]!).reverse();
    const done: NftBaseChain = {
      ...chain,
      rules: [...ours.map((comment, i) => ({ handle: 100 + i, comment })), ...bare.rules],
    };
    const [q] = by(diagnose(facts({ nftChains: [chain], nftRules: [done] })), 'nftables');
    expect(q).toMatchObject({ status: 'fixed', fix: '' });
  });

  it('firewalld, ip_forward, overlapping routes/addresses, inotify, another DHCP server', () => {
    const f = diagnose(
      facts({
        firewalld: { running: true, zone: '' },
        ipForward: { ipv4: '0', ipv6: '0' },
        routes: [{ dst: '192.168.122.0/25', dev: 'eth1' }],
        addrs: [{ ifname: 'eth2', local: '192.168.122.7', prefixlen: 24 }],
        inotify: { limit: 128, used: 125 },
        dhcpServers: [{ pid: 42, comm: 'udhcpd' }],
      }),
    );
    expect(by(f, 'firewalld')[0]).toMatchObject({
      status: 'problem',
      fix: 'firewall-cmd --zone=virtnet --change-interface=virbr0',
    });
    expect(by(f, 'ip_forward')[0]).toMatchObject({
      status: 'problem',
      fix: 'sysctl -w net.ipv4.ip_forward=1',
    });
    expect(by(f, 'routes')[0]).toMatchObject({
      status: 'problem',
      fix: 'ip route del 192.168.122.0/25 dev eth1',
    });
    expect(by(f, 'addresses')[0]).toMatchObject({
      status: 'problem',
      fix: 'ip addr del 192.168.122.7/24 dev eth2',
    });
    expect(by(f, 'inotify')[0]).toMatchObject({
      status: 'warning',
      fix: 'sysctl -w fs.inotify.max_user_instances=512',
    });
    expect(by(f, 'dhcp')[0]!.detail).toMatch(/udhcpd \(pid 42\)/);
    const zoned = diagnose(
      facts({
        firewalld: {
          running: true,
          zone: 'virtnet',
          binding: { ifname: 'virbr0', zone: 'virtnet', ours: true },
        },
      }),
    );
    expect(by(zoned, 'firewalld')[0]).toMatchObject({
      status: 'fixed',
      detail: 'bridge virbr0 is in zone virtnet (set by virtnet)',
    });
  });
});
