/**
 * NICs hot-plugged into a running domain (`virsh attach-interface … network NAME`): only libvirt's
 * network hook runs (`port-created` / `port-deleted`, the owner and MAC in `<networkport>`, as
 * captured from libvirt 9.0 in ../shared/libvirt-hooks/05, 09). Every case runs on the in-memory engine
 * AND on the real engine (LinuxEngine on the dry-run runner), so the handler asks nothing of the
 * engine that the real one refuses.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LinuxEngine } from '../../src/engine/engine.js';
import { ConflictError } from '../../src/errors.js';
import { handleHookEvent, reconcileRecords } from '../../src/hooks/handler.js';
import { runHook } from '../../src/hooks/main.js';
import { planHotplug } from '../../src/hooks/plan-hotplug.js';
import { domainKey } from '../../src/hooks/records.js';
import { parseNetworkHookData } from '../../src/model/domain.js';
import { dryRunEngine, filesEnding } from '../helpers/engine-fakes.js';
import { libvirtHooksDir } from '../helpers/shared.js';
import { domainXml, makeContext, meta, type TestContext, uuidFor, virtnetNetwork } from './fakes.js';

const U = uuidFor(0xa1);
const MAC = '52:54:00:aa:bb:01';
const MAC2 = '52:54:00:aa:bb:02';

/** The network hook's stdin for a port, shaped as libvirt 9.0 writes it (see the capture 05). */
function hookData(opts: {
  network?: string;
  bridge?: string;
  mode?: string;
  owner?: string;
  uuid?: string;
  mac: string;
}): string {
  const bridge = opts.bridge ?? 'vbr-h8';
  return `<hookData>
  <network connections='1'>
    <name>${opts.network ?? 'vnet-h8'}</name>
    <uuid>2ef76e20-c538-4542-ad71-f3aad8870e49</uuid>
    <forward mode='${opts.mode ?? 'bridge'}'/>
    <bridge name='${bridge}'/>
  </network>
  <networkport>
    <uuid>b093c970-3df5-4dcc-b9cb-a76e75d848cf</uuid>
    <owner>
      <name>${opts.owner ?? 'web'}</name>
      <uuid>${opts.uuid ?? U}</uuid>
    </owner>
    <mac address='${opts.mac}'/>
    <plug type='bridge' bridge='${bridge}'/>
  </networkport>
</hookData>`;
}

const fixedMeta = meta(
  `<virtnet:interface mac='${MAC}' ip='10.77.0.50'><virtnet:forward proto='tcp' host-port='8080' guest-port='80'/></virtnet:interface>`,
);

describe('planHotplug (pure)', () => {
  const nets = [virtnetNetwork('vnet-h8', 'vbr-h8')];
  const data = (o: Parameters<typeof hookData>[0]) => parseNetworkHookData(hookData(o));
  it('a new MAC on a running domain: a name-only port', () => {
    const p = planHotplug('port-created', data({ mac: MAC2 }), nets, undefined);
    expect(p).toEqual({
      action: 'attach',
      key: U,
      domain: { name: 'web', uuid: U },
      network: 'vnet-h8',
      isNew: true,
      port: {
        index: -1,
        kind: 'bridge',
        network: 'vnet-h8',
        mac: MAC2,
        bridge: 'vbr-h8',
        hostname: 'web',
        forwards: [],
        hotplugged: true,
      },
    });
  });
  it('nothing for a domain that is starting or stopping (record prepared), or a libvirt network that is not virtnet’s', () => {
    const prepared = {
      version: 1 as const,
      domain: 'web',
      uuid: U,
      phase: 'prepared' as const,
      ports: [],
      updatedAt: '',
    };
    expect(planHotplug('port-created', data({ mac: MAC }), nets, prepared).action).toBe('none');
    expect(planHotplug('port-deleted', data({ mac: MAC }), nets, prepared).action).toBe('none');
    const other = planHotplug(
      'port-created',
      data({ mac: MAC, bridge: 'virbr9', mode: 'nat' }),
      nets,
      undefined,
    );
    expect(other).toEqual({
      action: 'none',
      reason: "libvirt's network 'vnet-h8' is on bridge 'virbr9', not virtnet's 'vbr-h8'",
    });
    expect(planHotplug('port-created', data({ mac: MAC, network: 'default' }), nets, undefined)).toEqual({
      action: 'none',
      reason: "no virtnet network 'default'",
    });
    expect(planHotplug('port-deleted', data({ mac: MAC }), nets, undefined).action).toBe('none');
  });
  it('a domain name that is no host name: the port is recorded without a name', () => {
    const p = planHotplug('port-created', data({ mac: MAC2, owner: 'my_vm' }), nets, undefined);
    expect(p.action === 'attach' && p.port.hostname).toBe(undefined);
  });
});

describe.each(['fake', 'real'] as const)('hot-plug through the network hook, on the %s engine', (which) => {
  let dir: string;
  let ctx: TestContext;
  let engine: LinuxEngine | undefined;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh-hotplug-'));
    ctx = makeContext();
    if (which === 'real') {
      engine = await dryRunEngine(dir, ctx.defs[0]!);
      (ctx as { engine: unknown }).engine = engine;
    }
  });
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const hosts = () => ctx.engine.info('vnet-h8')?.extraHosts ?? [];
  const hostsfile = () => (which === 'real' ? filesEnding(dir, '.hostsfile') : undefined);
  const qemu = (object: string, operation: string, xml: string) =>
    handleHookEvent(ctx, {
      object,
      operation,
      subOperation: operation.endsWith('ed') || operation === 'release' ? 'end' : 'begin',
      extra: '-',
      xml,
    });
  const net = (operation: 'port-created' | 'port-deleted', o: Parameters<typeof hookData>[0]) =>
    handleHookEvent(ctx, {
      kind: 'network',
      object: o.network ?? 'vnet-h8',
      operation,
      subOperation: 'begin',
      extra: '-',
      xml: hookData(o),
    });
  const web = (stage: 'prepare' | 'run' | 'stop', metadata = fixedMeta) =>
    stage === 'run'
      ? domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet0', metadata })
      : domainXml({ name: 'web', uuid: U, mac: MAC, type: 'network', network: 'vnet-h8', metadata });
  /** A domain start as libvirt calls the hooks (port-created between prepare and start). */
  const startWeb = async (metadata = fixedMeta) => {
    await qemu('web', 'prepare', web('prepare', metadata));
    await net('port-created', { mac: MAC });
    await qemu('web', 'start', web('run', metadata));
    await qemu('web', 'started', web('run', metadata));
  };
  const stopWeb = async () => {
    await qemu('web', 'stopped', web('stop'));
    await net('port-deleted', { mac: MAC });
    await qemu('web', 'release', web('stop'));
  };

  it('at domain start and stop the port calls change nothing: the qemu hook does it once', async () => {
    await startWeb();
    expect(hosts()).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    if (which === 'fake') expect(ctx.engine.calls).toEqual([`addHost vnet-h8 ${MAC} 10.77.0.50 web`]);
    expect(ctx.forwarder.calls).toEqual(['apply web 1']);
    // libvirt may repeat port-created for a port it knows (e.g. after its own restart): idempotent.
    await net('port-created', { mac: MAC });
    expect(hosts()).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    expect(ctx.forwarder.calls).toEqual(['apply web 1']);
    await stopWeb();
    expect(hosts()).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(await ctx.records.list()).toEqual([]);
    if (which === 'fake')
      expect(ctx.engine.calls).toEqual([
        `addHost vnet-h8 ${MAC} 10.77.0.50 web`,
        `removeHost vnet-h8 ${MAC}`,
      ]);
  });

  it('a NIC attached to the running domain gets MAC + domain name; detached, it loses it', async () => {
    await startWeb();
    await net('port-created', { mac: MAC2 });
    expect(hosts()).toEqual([
      { mac: MAC, ip: '10.77.0.50', hostname: 'web' },
      { mac: MAC2, hostname: 'web' },
    ]);
    expect(hostsfile() ?? `${MAC2},web\n`).toContain(`${MAC2},web\n`);
    const rec = await ctx.records.get(U);
    expect(rec?.phase).toBe('started');
    expect(rec?.ports.map((p) => [p.mac, !!p.hostAdded, !!p.hotplugged])).toEqual([
      [MAC, true, false],
      [MAC2, true, true],
    ]);
    // Twice is once.
    await net('port-created', { mac: MAC2 });
    expect(hosts()).toHaveLength(2);

    await net('port-deleted', { mac: MAC2 });
    expect(hosts()).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    expect(hostsfile() ?? '').not.toContain(MAC2);
    expect((await ctx.records.get(U))?.ports.map((p) => p.mac)).toEqual([MAC]);
    expect(ctx.forwarder.installed.get(U)?.rules).toHaveLength(1); // the other NIC's forward stays
    await net('port-deleted', { mac: MAC2 }); // a repeat: nothing
    await stopWeb();
    expect(hosts()).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it('a hot-plugged NIC still attached at domain stop is taken out by the qemu hook', async () => {
    await startWeb();
    await net('port-created', { mac: MAC2 });
    await qemu('web', 'stopped', web('stop'));
    expect(hosts()).toEqual([]);
    await net('port-deleted', { mac: MAC });
    await net('port-deleted', { mac: MAC2 });
    await qemu('web', 'release', web('stop'));
    expect(await ctx.records.list()).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
  });

  it('detaching the NIC that has metadata removes its reservation and forwards; re-attaching brings both back', async () => {
    await startWeb();
    await net('port-deleted', { mac: MAC });
    expect(hosts()).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    const rec = await ctx.records.get(U);
    expect(rec?.ports).toMatchObject([{ mac: MAC, ip: '10.77.0.50', unplugged: true }]);
    expect(rec?.forwardsApplied).toBeUndefined();
    await net('port-created', { mac: MAC });
    expect(hosts()).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    expect(ctx.forwarder.installed.get(U)?.rules.map((r) => r.guestIp)).toEqual(['10.77.0.50']);
    await stopWeb();
    expect(hosts()).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
  });

  it('a detach that fails half-way keeps the port recorded as attached; a repeat or the stop finishes it', async () => {
    await startWeb();
    const remove = ctx.forwarder.remove.bind(ctx.forwarder);
    ctx.forwarder.remove = async () => {
      throw new Error('nft: Could not process rule');
    };
    await expect(net('port-deleted', { mac: MAC })).rejects.toThrow(
      /^port forwards: nft: Could not process rule/,
    );
    expect(hosts()).toEqual([]);
    let rec = await ctx.records.get(U);
    expect(rec?.forwardsApplied).toBe(true);
    expect(rec?.ports.map((p) => [p.mac, !!p.hostAdded, !!p.unplugged])).toEqual([[MAC, false, false]]);
    ctx.forwarder.remove = remove;
    await net('port-deleted', { mac: MAC });
    expect(ctx.forwarder.installed.size).toBe(0);
    rec = await ctx.records.get(U);
    expect(rec?.ports.map((p) => [p.mac, !!p.unplugged])).toEqual([[MAC, true]]);

    // A hot-plugged NIC whose entry cannot be removed stays recorded with it; the stop removes it.
    await net('port-created', { mac: MAC2 });
    const removeHost = ctx.engine.removeHost.bind(ctx.engine);
    ctx.engine.removeHost = async () => {
      throw new Error('dnsmasq: SIGHUP failed');
    };
    await expect(net('port-deleted', { mac: MAC2 })).rejects.toThrow(/dnsmasq: SIGHUP failed/);
    ctx.engine.removeHost = removeHost;
    rec = await ctx.records.get(U);
    expect(rec?.ports.find((p) => p.mac === MAC2)?.hostAdded).toBe(true);
    await stopWeb();
    expect(hosts()).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it('a running domain that had nothing on virtnet gets a record from the hot-plug, undone at its stop', async () => {
    const other = domainXml({ name: 'solo', uuid: uuidFor(0xb2), mac: MAC, bridge: 'br-elsewhere' });
    await qemu('solo', 'prepare', other);
    await qemu('solo', 'start', other);
    expect(await ctx.records.list()).toEqual([]);
    await net('port-created', { mac: MAC2, owner: 'solo', uuid: uuidFor(0xb2) });
    expect(hosts()).toEqual([{ mac: MAC2, hostname: 'solo' }]);
    expect((await ctx.records.get(uuidFor(0xb2)))?.phase).toBe('started');
    await qemu('solo', 'stopped', other);
    expect(hosts()).toEqual([]);
    await net('port-deleted', { mac: MAC2, owner: 'solo', uuid: uuidFor(0xb2) });
    await qemu('solo', 'release', other);
    expect(await ctx.records.list()).toEqual([]);
  });

  it('detach of the only hot-plugged NIC forgets the domain', async () => {
    await net('port-created', { mac: MAC2, owner: 'solo', uuid: uuidFor(0xb2) });
    expect(hosts()).toEqual([{ mac: MAC2, hostname: 'solo' }]);
    await net('port-deleted', { mac: MAC2, owner: 'solo', uuid: uuidFor(0xb2) });
    expect(hosts()).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it('a domain name that is no host name: nothing registered, the port recorded (for the DOMAIN column)', async () => {
    await net('port-created', { mac: MAC2, owner: 'my_vm', uuid: uuidFor(0xb3) });
    expect(hosts()).toEqual([]);
    expect((await ctx.records.get(uuidFor(0xb3)))?.ports.map((p) => p.mac)).toEqual([MAC2]);
  });

  it('a MAC another domain holds on the network is refused (one line), nothing added', async () => {
    await startWeb();
    await expect(net('port-created', { mac: MAC, owner: 'thief', uuid: uuidFor(0xb4) })).rejects.toThrow(
      ConflictError,
    );
    await expect(net('port-created', { mac: MAC, owner: 'thief', uuid: uuidFor(0xb4) })).rejects.toThrow(
      `MAC address already used on network 'vnet-h8' by domain 'web'`,
    );
    expect(hosts()).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    expect(await ctx.records.get(uuidFor(0xb4))).toBeUndefined();
  });

  it('the virtnet network is not running: one line saying so, nothing recorded', async () => {
    if (engine) await engine.stop('vnet-h8');
    else ctx.engine.nets.delete('vnet-h8');
    await expect(net('port-created', { mac: MAC2 })).rejects.toThrow(
      `virtnet network 'vnet-h8' not running: no DNS name or reservation for ${MAC2} (start it: virtnetctl start vnet-h8)`,
    );
    expect(await ctx.records.list()).toEqual([]);
  });

  it("libvirt's network of the same name on another bridge is not virtnet's: nothing done", async () => {
    await net('port-created', { mac: MAC2, bridge: 'virbr9' });
    expect(hosts()).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it('after a daemon restart the hot-plugged name is reconciled from the record', async () => {
    await startWeb();
    await net('port-created', { mac: MAC2 });
    // The engine lost the live entries (what a restart without adopted state looks like).
    for (const m of [MAC, MAC2]) await ctx.engine.removeHost('vnet-h8', m);
    expect(hosts()).toEqual([]);
    expect(await reconcileRecords(ctx)).toEqual([]);
    expect(hosts()).toEqual([
      { mac: MAC, ip: '10.77.0.50', hostname: 'web' },
      { mac: MAC2, hostname: 'web' },
    ]);
  });
});

describe('hot-plug in the in-process fallback (main.ts): cheap exits', () => {
  it('port calls that are no hot-plug on a virtnet network exit 0 before any engine is built', async () => {
    const base = mkdtempSync(join(tmpdir(), 'vh-hotplug-main-'));
    try {
      const captured = readFileSync(join(libvirtHooksDir, '05-network-port-created-begin.stdin.xml'), 'utf8');
      // No virtnet network 'default' is defined: nothing to do, no engine (it would need root).
      const env = { VIRTNET_CONFIG_DIR: join(base, 'networks'), VIRTNET_RUN_DIR: join(base, 'run') };
      for (const op of ['port-created', 'port-deleted'])
        expect(await runHook(['network', 'default', op, 'begin', '-'], captured, env)).toEqual({
          code: 0,
          stdout: '',
          stderr: '',
        });
      expect(domainKey({ name: 'golden-vm' })).toBe('name:golden-vm');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('hot-plugged NICs when libvirtd reconnects (qemu reconnect with the live XML)', () => {
  it('a hot-plugged NIC in the live XML is the recorded one: nothing is removed and re-added', async () => {
    const ctx = makeContext();
    const qemu = (operation: string, xml: string) =>
      handleHookEvent(ctx, { object: 'web', operation, subOperation: 'begin', extra: '-', xml });
    const one = domainXml({
      name: 'web',
      uuid: U,
      mac: MAC,
      bridge: 'vbr-h8',
      tap: 'vnet0',
      metadata: fixedMeta,
    });
    await qemu('prepare', one);
    await qemu('start', one);
    await handleHookEvent(ctx, {
      kind: 'network',
      object: 'vnet-h8',
      operation: 'port-created',
      subOperation: 'begin',
      extra: '-',
      xml: hookData({ mac: MAC2 }),
    });
    // libvirtd restarted: its reconnect call carries the live XML, with the hot-plugged NIC (as libvirt
    // shows a running type='network' NIC on a bridge-mode network: type='bridge').
    const both = one.replace(
      '</devices>',
      `<interface type='bridge'><mac address='${MAC2}'/><source network='vnet-h8' bridge='vbr-h8'/><target dev='vnet1'/></interface>\n  </devices>`,
    );
    const before = ctx.engine.calls.length;
    await qemu('reconnect', both);
    expect(ctx.engine.calls.slice(before).filter((c) => c.startsWith('removeHost'))).toEqual([]);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([
      { mac: MAC, ip: '10.77.0.50', hostname: 'web' },
      { mac: MAC2, hostname: 'web' },
    ]);
    expect(ctx.forwarder.calls.filter((c) => c.startsWith('remove'))).toEqual([]);
    // From now on the qemu hook's record: the NIC's position and tap are known.
    expect((await ctx.records.get(U))?.ports.map((p) => [p.mac, p.index, p.ifname, !!p.hotplugged])).toEqual([
      [MAC, 0, 'vnet0', false],
      [MAC2, 1, 'vnet1', false],
    ]);
  });
});

describe('hot-plug sequences (property)', () => {
  it('any attach/detach sequence on a running domain: the entries are exactly the attached NICs; the stop leaves nothing', async () => {
    const MACS = [MAC, MAC2, '52:54:00:aa:bb:03'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('port-created', 'port-deleted'), fc.constantFrom(0, 1, 2)), {
          maxLength: 12,
        }),
        async (steps) => {
          const ctx = makeContext();
          const call = (kind: 'qemu' | 'network', operation: string, xml: string) =>
            handleHookEvent(ctx, {
              kind,
              object: kind === 'qemu' ? 'web' : 'vnet-h8',
              operation,
              subOperation: 'begin',
              extra: '-',
              xml,
            });
          const run = domainXml({
            name: 'web',
            uuid: U,
            mac: MAC,
            bridge: 'vbr-h8',
            tap: 'vnet0',
            metadata: fixedMeta,
          });
          const off = domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-h8', metadata: fixedMeta });
          await call('qemu', 'prepare', off);
          await call('network', 'port-created', hookData({ mac: MAC }));
          await call('qemu', 'start', run);
          const attached = new Set([MAC]);
          for (const [op, m] of steps) {
            await call('network', op, hookData({ mac: MACS[m]! }));
            if (op === 'port-created') attached.add(MACS[m]!);
            else attached.delete(MACS[m]!);
            const want = MACS.filter((x) => attached.has(x)).map((x) =>
              x === MAC ? { mac: x, ip: '10.77.0.50', hostname: 'web' } : { mac: x, hostname: 'web' },
            );
            const have = [...(ctx.engine.info('vnet-h8')?.extraHosts ?? [])].sort((a, b) =>
              a.mac!.localeCompare(b.mac!),
            );
            expect(have).toEqual(want);
            expect(ctx.forwarder.installed.has(U)).toBe(attached.has(MAC));
          }
          await call('qemu', 'stopped', off);
          for (const m of MACS) await call('network', 'port-deleted', hookData({ mac: m }));
          await call('qemu', 'release', off);
          expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
          expect(ctx.forwarder.installed.size).toBe(0);
          expect(await ctx.records.list()).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});
