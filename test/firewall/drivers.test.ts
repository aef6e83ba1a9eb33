import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandRunner, createRunner, DryRunRunner, type RunRequest } from '../../src/exec/runner.js';
import { chooseFirewall, makeFirewall } from '../../src/firewall/detect.js';
import { ruleLines, splitRestoreLine } from '../../src/firewall/iptables.js';
import { nftErrorLines } from '../../src/firewall/nftables.js';
import { renderNftables } from '../../src/plan/firewall/nftables.js';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import type { FirewallScripts } from '../../src/plan/firewall/scripts.js';
import { cleanupAllNetns, createNetns, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { goldenNetworks } from '../plan/firewall/fixtures.js';

const nft: FirewallScripts = {
  backend: 'nftables',
  nft: {
    apply:
      'table inet vh5_test {\n  chain forward_x {\n    type filter hook forward priority 0; policy accept;\n    iifname "br9" oifname "br9" accept\n    iifname "br9" reject\n  }\n}\n',
    remove: 'delete table inet vh5_test\n',
  },
};

const ipt: FirewallScripts = {
  backend: 'iptables',
  iptables: {
    v4: {
      apply:
        '*filter\n:VH5_FWX - [0:0]\n-A VH5_FWX -i br9 -o br9 -m comment --comment "vh5 test" -j ACCEPT\n-I FORWARD 1 -j VH5_FWX\nCOMMIT\n',
      remove:
        '*filter\n-D FORWARD -j VH5_FWX\n-D VH5_FWX -i br9 -o br9 -m comment --comment "vh5 test" -j ACCEPT\n-X VH5_FWX\nCOMMIT\n',
    },
    v6: {
      apply:
        '*filter\n:VH5_FWX - [0:0]\n-A VH5_FWX -i br9 -o br9 -j ACCEPT\n-I FORWARD 1 -j VH5_FWX\nCOMMIT\n',
      remove: '*filter\n-D FORWARD -j VH5_FWX\n-D VH5_FWX -i br9 -o br9 -j ACCEPT\n-X VH5_FWX\nCOMMIT\n',
    },
  },
};

describe('iptables restore-line parsing', () => {
  it('splits words and keeps quoted comments together', () => {
    expect(splitRestoreLine('-A X -m comment --comment "a b \\"c\\"" -j ACCEPT')).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'a b "c"',
      '-j',
      'ACCEPT',
    ]);
  });
  it('finds the rules an apply text adds, without -I positions', () => {
    expect(ruleLines(ipt.backend === 'iptables' ? ipt.iptables.v4.apply : '')).toEqual([
      {
        table: 'filter',
        chain: 'VH5_FWX',
        spec: ['-i', 'br9', '-o', 'br9', '-m', 'comment', '--comment', 'vh5 test', '-j', 'ACCEPT'],
      },
      { table: 'filter', chain: 'FORWARD', spec: ['-j', 'VH5_FWX'] },
    ]);
  });
});

describe('firewall drivers (dry run)', () => {
  it('nftables: one nft -f - per apply, the script on stdin', async () => {
    const d = new DryRunRunner();
    await makeFirewall(d, { backend: 'nftables', reason: '' }).apply('n1', nft);
    expect(d.commandLines()).toEqual(['nft -f -']);
    expect(d.calls[0]!.input).toBe(nft.backend === 'nftables' ? nft.nft.apply : '');
  });
  it('nftables: scripts submitted together go in one nft run; a failing one is retried alone', async () => {
    const d = new DryRunRunner();
    const fw = makeFirewall(d, { backend: 'nftables', reason: '' });
    const other: FirewallScripts = {
      backend: 'nftables',
      nft: { apply: 'table ip other {\n}\n', remove: '' },
    };
    await Promise.all([fw.apply('n1', nft), fw.apply('n2', other)]);
    expect(d.commandLines()).toEqual(['nft -f -']);
    expect(d.calls[0]!.step).toBe('firewall: nftables rules of 2 networks');
    expect(d.calls[0]!.input).toContain('table ip other');
    const bad = new DryRunRunner().on(['nft'], (req) =>
      req.input?.includes('table ip other') ? { exitCode: 1, stderr: 'Error: other is bad' } : {},
    );
    const fw2 = makeFirewall(bad, { backend: 'nftables', reason: '' });
    const res = await Promise.allSettled([fw2.apply('n1', nft), fw2.apply('n2', other)]);
    expect(res[0]!.status).toBe('fulfilled');
    expect(String((res[1] as PromiseRejectedResult).reason)).toMatch(/network n2.*other is bad/);
    expect(bad.commandLines()).toEqual(['nft -f -', 'nft -f -', 'nft -f -']);
  });

  it('nftables: scripts submitted while a run is in flight go together in the next run (group commit)', async () => {
    const d = new DryRunRunner();
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let first = true;
    const gated: CommandRunner = {
      run: async (req) => {
        const res = d.run(req);
        if (first) {
          first = false;
          await gate;
        }
        return res;
      },
    };
    const fw = makeFirewall(gated, { backend: 'nftables', reason: '' });
    const s = (i: number): FirewallScripts => ({
      backend: 'nftables',
      nft: { apply: `table ip t${i} {\n}\n`, remove: `delete table ip t${i}\n` },
    });
    const a = fw.apply('n0', s(0));
    await new Promise((r) => setImmediate(r)); // n0's run has started and waits at the gate
    await new Promise((r) => setImmediate(r));
    const rest = [1, 2, 3, 4].map((i) => fw.remove(`n${i}`, s(i)));
    await new Promise((r) => setTimeout(r, 20));
    expect(d.calls).toHaveLength(1); // one run at a time
    open();
    await Promise.all([a, ...rest]);
    expect(d.calls.map((c) => c.step)).toEqual([
      'firewall: add nftables rules of network n0',
      'firewall: nftables rules of 4 networks',
    ]);
    expect(d.calls[1]!.input).toBe(
      'delete table ip t1\ndelete table ip t2\ndelete table ip t3\ndelete table ip t4\n',
    );
  });
  it('nftables: a failed batch runs the scripts nft names on their own, the others together again', async () => {
    const s = (i: number): FirewallScripts => ({
      backend: 'nftables',
      nft: { apply: `table ip t${i} {\n  chain c {\n  }\n}\n`, remove: '' },
    });
    // Real nft's error form; the bad script is the third of four (lines 9-12).
    const d = new DryRunRunner().on(['nft'], (req) =>
      req.input?.includes('table ip t2')
        ? {
            exitCode: 1,
            stderr: `/dev/stdin:${req.input.startsWith('table ip t2') ? 1 : 9}:10-11: Error: t2 is bad\n`,
          }
        : {},
    );
    const fw = makeFirewall(d, { backend: 'nftables', reason: '' });
    const res = await Promise.allSettled([0, 1, 2, 3].map((i) => fw.apply(`n${i}`, s(i))));
    expect(res.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((res[2] as PromiseRejectedResult).reason)).toMatch(/network n2.*t2 is bad/);
    expect(d.calls.map((c) => c.step)).toEqual([
      'firewall: nftables rules of 4 networks',
      'firewall: nftables rules of 3 networks',
      'firewall: add nftables rules of network n2',
    ]);
    expect(d.calls[1]!.input).not.toContain('t2');
  });
  it('nft error lines are read from its stderr', () => {
    expect(
      nftErrorLines(
        '/dev/stdin:3:19-20: Error: Could not process rule: No such file or directory\ndelete table inet t3\n/dev/stdin:12:1-5: Error: x\n',
      ),
    ).toEqual([3, 12]);
    expect(nftErrorLines('Error: something')).toEqual([]);
  });

  it('nftables: a fresh network goes in through `create` alone (no table deletion)', async () => {
    const d = new DryRunRunner();
    const scripts: FirewallScripts = {
      backend: 'nftables',
      nft: { ...nft.nft, create: 'create table inet vh5_test\n' },
    };
    await makeFirewall(d, { backend: 'nftables', reason: '' }).apply('n1', scripts);
    expect(d.commandLines()).toEqual(['nft -f -']);
    expect(d.calls[0]!.input).toBe('create table inet vh5_test\n');
  });
  it('nftables: when `create` fails (a table is there) the replacing apply runs; its error is reported', async () => {
    const scripts: FirewallScripts = {
      backend: 'nftables',
      nft: { ...nft.nft, create: 'create table inet vh5_test\n' },
    };
    const exists = new DryRunRunner().on(['nft'], (req) =>
      req.input?.startsWith('create') ? { exitCode: 1, stderr: 'Error: File exists' } : {},
    );
    await makeFirewall(exists, { backend: 'nftables', reason: '' }).apply('n1', scripts);
    expect(exists.calls.map((c) => c.input)).toEqual(['create table inet vh5_test\n', nft.nft.apply]);
    const broken = new DryRunRunner().on(['nft'], (req) =>
      req.input?.startsWith('create')
        ? { exitCode: 1, stderr: 'Error: File exists' }
        : { exitCode: 1, stderr: 'Error: syntax error' },
    );
    await expect(
      makeFirewall(broken, { backend: 'nftables', reason: '' }).apply('n1', scripts),
    ).rejects.toThrow(/network n1.*syntax error/);
  });
  it('nftables: a failed apply names the step and nft stderr', async () => {
    const d = new DryRunRunner().on(['nft'], { exitCode: 1, stderr: 'Error: syntax error' });
    await expect(makeFirewall(d, { backend: 'nftables', reason: '' }).apply('n1', nft)).rejects.toThrow(
      /firewall: add nftables rules of network n1.*syntax error/,
    );
  });
  it('iptables: one restore per family; a v6 failure takes v4 out again', async () => {
    const d = new DryRunRunner().on(['ip6tables-restore'], { exitCode: 2, stderr: 'line 3 failed' });
    const fw = makeFirewall(d, { backend: 'iptables', reason: '' });
    await expect(fw.apply('n1', ipt)).rejects.toThrow(/ip6tables rules of network n1.*line 3 failed/);
    expect(d.commandLines()).toEqual([
      'iptables-restore --noflush -w',
      'ip6tables-restore --noflush -w',
      'iptables-restore --noflush -w',
    ]);
    expect(d.calls[2]!.input).toContain('-X VH5_FWX');
  });
  it('the wrong scripts for a driver is a programming error', async () => {
    const fw = makeFirewall(new DryRunRunner(), { backend: 'iptables', reason: '' });
    await expect(fw.apply('n1', nft)).rejects.toThrow(/iptables driver given nftables/);
  });
});

describe('chooseFirewall', () => {
  const runner = (nftOk: boolean, iptOk: boolean): CommandRunner =>
    new DryRunRunner()
      .on(['nft'], { exitCode: nftOk ? 0 : 1, stderr: 'nft: command not found' })
      .on(['iptables-restore'], { exitCode: iptOk ? 0 : 1, stderr: 'nope' });
  it('nftables by default when nft works', async () => {
    expect(await chooseFirewall(runner(true, true), 'auto')).toEqual({
      backend: 'nftables',
      reason: 'nft works (default)',
    });
  });
  it('iptables when nft is missing, with the reason', async () => {
    const c = await chooseFirewall(runner(false, true), 'auto');
    expect(c.backend).toBe('iptables');
    expect(c.reason).toMatch(/nft does not work.*command not found/);
  });
  it('iptables on request even when nft works', async () => {
    expect((await chooseFirewall(runner(true, true), 'iptables')).backend).toBe('iptables');
  });
  it('fails when the requested backend does not work', async () => {
    await expect(chooseFirewall(runner(false, true), 'nftables')).rejects.toThrow(/nftables requested/);
    await expect(chooseFirewall(runner(false, false), 'auto')).rejects.toThrow(/neither/);
  });
});

const skip = missingPrereqs(['ip', 'nft', 'iptables-restore', 'ip6tables-restore']);

/** Runs every command inside one namespace. */
class NsRunner implements CommandRunner {
  private readonly inner = createRunner();
  constructor(private readonly ns: string) {}
  run(req: RunRequest) {
    return this.inner.run({ ...req, netns: this.ns });
  }
}

describe.skipIf(skip)('firewall drivers (real, in a namespace)', () => {
  let ns: Netns;
  let r: NsRunner;
  beforeAll(async () => {
    ns = await createNetns('vh5-fw');
    r = new NsRunner(ns.name);
  });
  afterAll(cleanupAllNetns);

  // Sorted lines: chain order may change on re-apply, a duplicated rule still shows twice.
  const sorted = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .sort()
      .join('\n');
  let listing: () => Promise<string>;

  it('nftables: `create` on a fresh namespace, the replacing apply over leftovers — never a duplicate', async () => {
    const rendered = renderNftables(planFirewall(goldenNetworks['nat-default']!));
    expect(rendered.create).toMatch(/^create table ip /);
    expect(rendered.create).not.toMatch(/delete table/);
    const scripts: FirewallScripts = { backend: 'nftables', nft: rendered };
    const list = async () => (await ns.exec(['nft', 'list', 'ruleset'])).stdout;
    const before = await list();
    const d = new DryRunRunner();
    const recorded: CommandRunner = {
      run: (req: RunRequest) => {
        void d.run(req); // recorded only
        return r.run(req);
      },
    };
    const fw = makeFirewall(recorded, { backend: 'nftables', reason: 'test' });
    await fw.apply('g', scripts);
    expect(d.calls.map((c) => c.input)).toEqual([rendered.create]); // fresh: one transaction, no delete
    const applied = await list();
    expect(applied).toMatch(/masquerade/);
    // The tables are there now (a leftover after a crash, say): create fails, apply replaces.
    await fw.apply('g', scripts);
    expect(d.calls.map((c) => c.input)).toEqual([rendered.create, rendered.create, rendered.apply]);
    expect(await list()).toBe(applied);
    await fw.remove('g', scripts);
    expect(await list()).toBe(before);
  });

  it('nftables: networks started side by side go in as one transaction; a leftover table is found by its line', async () => {
    const scripts = (i: number): FirewallScripts => ({
      backend: 'nftables',
      nft: {
        create: `create table inet vh6_b${i}\nadd chain inet vh6_b${i} input { type filter hook input priority 0; policy accept; }\nadd rule inet vh6_b${i} input iifname "vh6b${i}" accept\n`,
        apply: `table inet vh6_b${i} {\n}\ndelete table inet vh6_b${i}\ntable inet vh6_b${i} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    iifname "vh6b${i}" accept\n  }\n}\n`,
        remove: `delete table inet vh6_b${i}\n`,
      },
    });
    // A leftover of network 3 (a crash, say): its `create` fails in the kernel, with its line named.
    await ns.exec(['nft', 'add', 'table', 'inet', 'vh6_b3']);
    const steps: string[] = [];
    const recorded: CommandRunner = {
      run: (req: RunRequest) => {
        steps.push(req.step);
        return r.run(req);
      },
    };
    const fw = makeFirewall(recorded, { backend: 'nftables', reason: 'test' });
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => fw.apply(`b${i}`, scripts(i))));
    expect(steps).toEqual([
      'firewall: nftables rules of 6 networks',
      'firewall: nftables rules of 5 networks',
      'firewall: add nftables rules of network b3', // create, alone: fails (the table is there)
      'firewall: add nftables rules of network b3', // the replacing apply
    ]);
    const tables = (await ns.exec(['nft', 'list', 'tables'])).stdout;
    for (const i of [0, 1, 2, 3, 4, 5]) expect(tables).toContain(`table inet vh6_b${i}`);
    expect((await ns.exec(['nft', 'list', 'chain', 'inet', 'vh6_b3', 'input'])).stdout).toContain(
      'iifname "vh6b3" accept',
    );
    steps.length = 0;
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => fw.remove(`b${i}`, scripts(i))));
    expect(steps).toEqual(['firewall: nftables rules of 6 networks']);
    expect((await ns.exec(['nft', 'list', 'tables'])).stdout).not.toContain('vh6_b');
  });

  for (const [backend, scripts] of [
    ['nftables', nft],
    ['iptables', ipt],
  ] as const) {
    it(`${backend}: apply, present, drift repair without duplicates, remove to zero residue`, async () => {
      listing =
        backend === 'nftables'
          ? async () => sorted((await ns.exec(['nft', 'list', 'ruleset'])).stdout)
          : // iptables-nft creates the built-in tables and chains on first use and leaves them (empty,
            // policy ACCEPT): compare what carries behaviour — user chains and rules.
            async () => {
              const out: string[] = [];
              for (const tool of ['iptables-save', 'ip6tables-save']) {
                const t = (await ns.exec([tool])).stdout;
                out.push(
                  ...t
                    .split('\n')
                    .filter(
                      (l) =>
                        l.startsWith('-A') ||
                        (l.startsWith(':') && !/^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) /.test(l)),
                    )
                    .map((l) => `${tool} ${l}`),
                );
              }
              return sorted(out.join('\n'));
            };
      const before = await listing();
      const fw = makeFirewall(r, { backend, reason: 'test' });
      expect(await fw.present('t', scripts)).toBe('absent');
      await fw.apply('t', scripts);
      const applied = await listing();
      expect(applied).not.toBe(before);
      expect(await fw.present('t', scripts)).toBe('present');
      // Re-applying over a complete set changes nothing (no duplicated rule).
      await fw.repair('t', scripts);
      expect(await listing()).toBe(applied);
      // Drift: one rule deleted behind our back.
      if (backend === 'nftables') {
        await ns.exec(['nft', 'flush', 'chain', 'inet', 'vh5_test', 'forward_x']);
      } else {
        await ns.exec(['iptables', '-w', '-D', 'FORWARD', '-j', 'VH5_FWX']);
        expect(await fw.present('t', scripts)).toBe('partial');
      }
      await fw.repair('t', scripts);
      expect(await listing()).toBe(applied);
      await fw.remove('t', scripts);
      expect(await listing()).toBe(before);
      expect(await fw.present('t', scripts)).toBe('absent');
      // Removing again is not an error.
      await fw.remove('t', scripts);
      expect(await listing()).toBe(before);
    });
  }
});
