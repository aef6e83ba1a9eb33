import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../src/errors.js';
import { handleHookEvent, reconcileRecords } from '../../src/hooks/handler.js';
import { LockManager } from '../../src/hooks/lock.js';
import { FileRecordStore } from '../../src/hooks/records.js';
import { domainXml, macFor, makeContext, meta, type TestContext, uuidFor } from './fakes.js';

const call = (ctx: TestContext, object: string, operation: string, xml: string) =>
  handleHookEvent(ctx, {
    object,
    operation,
    subOperation: operation.endsWith('ed') ? 'end' : 'begin',
    extra: '-',
    xml,
  });

const U = uuidFor(1);
const MAC = '52:54:00:aa:bb:01';
const fwdMeta = meta(
  `<virtnet:interface mac='${MAC}' ip='10.77.0.50' ip6='fd00:77::50'><virtnet:forward proto='tcp' host-port='8080' guest-port='80'/></virtnet:interface>`,
);
const at = (stage: 'prepare' | 'run' | 'stop', m = fwdMeta) =>
  domainXml({
    name: 'web',
    uuid: U,
    mac: MAC,
    bridge: 'vbr-h8',
    tap: stage === 'run' ? 'vnet0' : undefined,
    metadata: m,
  });

async function lifecycle(ctx: TestContext) {
  await call(ctx, 'web', 'prepare', at('prepare'));
  await call(ctx, 'web', 'start', at('run'));
  await call(ctx, 'web', 'started', at('run'));
}

describe('handleHookEvent: domain lifecycle', () => {
  it('start adds the reservation, the forwards and emits PortAttached; stop removes exactly that', async () => {
    const ctx = makeContext();
    await call(ctx, 'web', 'prepare', at('prepare'));
    expect((await ctx.records.get(U))?.phase).toBe('prepared');
    expect(ctx.engine.calls).toEqual([]);

    await call(ctx, 'web', 'start', at('run'));
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    const fw = ctx.forwarder.installed.get(U);
    expect(fw?.rules).toEqual([
      {
        proto: 'tcp',
        family: 'ipv4',
        hostPort: 8080,
        guestPort: 80,
        guestIp: '10.77.0.50',
        network: 'vnet-h8',
        bridge: 'vbr-h8',
      },
      {
        proto: 'tcp',
        family: 'ipv6',
        hostPort: 8080,
        guestPort: 80,
        guestIp: 'fd00:77::50',
        network: 'vnet-h8',
        bridge: 'vbr-h8',
      },
    ]);
    expect(ctx.emitted).toEqual([
      { event: 'port-attached', payload: { network: 'vnet-h8', ifname: 'vnet0', mac: MAC, domain: 'web' } },
    ]);
    // libvirt enslaves type='bridge' taps itself.
    expect(ctx.engine.calls.filter((c) => c.startsWith('attachPort'))).toEqual([]);

    // `started` after a successful `start`: nothing again.
    const n = ctx.engine.calls.length + ctx.forwarder.calls.length;
    await call(ctx, 'web', 'started', at('run'));
    expect(ctx.engine.calls.length + ctx.forwarder.calls.length).toBe(n);

    // stopped: the XML no longer names the tap — the record does.
    await call(ctx, 'web', 'stopped', at('stop'));
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(ctx.emitted.at(-1)).toEqual({
      event: 'port-detached',
      payload: { network: 'vnet-h8', ifname: 'vnet0', domain: 'web' },
    });
    expect((await ctx.records.get(U))?.phase).toBe('prepared');
    await call(ctx, 'web', 'release', at('stop'));
    expect(await ctx.records.get(U)).toBeUndefined();
  });

  it('without metadata: MAC + the domain name, so the VM resolves by its libvirt name', async () => {
    const ctx = makeContext();
    const xml = domainXml({ name: 'db1', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet4' });
    await call(ctx, 'db1', 'prepare', xml);
    await call(ctx, 'db1', 'start', xml);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, hostname: 'db1' }]);
    expect(ctx.forwarder.calls).toEqual([]);
  });

  it('on a span member: no automatic name (the gateway serves names), an explicit one is refused', async () => {
    const ctx = makeContext();
    ctx.engine.spanMember('vnet-h8');
    const xml = domainXml({ name: 'db1', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet4' });
    await call(ctx, 'db1', 'prepare', xml);
    await call(ctx, 'db1', 'start', xml);
    await call(ctx, 'db1', 'started', xml);
    expect(ctx.engine.calls).toEqual([]);
    expect((await ctx.records.get(U))?.phase).toBe('started');
    await call(ctx, 'db1', 'stopped', xml);
    await call(ctx, 'db1', 'release', xml);
    expect(ctx.engine.calls).toEqual([]);
    expect(await ctx.records.get(U)).toBeUndefined();

    const U2 = uuidFor(2);
    const MAC2 = macFor(2);
    for (const inner of [
      `<virtnet:interface mac='${MAC2}' ip='10.77.0.60'/>`,
      `<virtnet:interface mac='${MAC2}' name='db2'/>`,
    ]) {
      const x = domainXml({
        name: 'db2',
        uuid: U2,
        mac: MAC2,
        bridge: 'vbr-h8',
        tap: 'vnet5',
        metadata: meta(inner),
      });
      await call(ctx, 'db2', 'prepare', x);
      await expect(call(ctx, 'db2', 'start', x)).rejects.toThrow(
        'network vnet-h8: this host is a member of a span; reservations and names are served by the gateway 192.0.2.11',
      );
      await call(ctx, 'db2', 'release', x);
    }
  });

  it("type='network' on a virtnet network, as libvirt 9.0 passes it at each stage (no metadata, and a fixed IP)", async () => {
    const ctx = makeContext();
    // prepare/stopped/release: type='network' + <source network>; start: type='bridge' on the bridge.
    const asNetwork = domainXml({ name: 'vm-net', uuid: U, mac: MAC, type: 'network', network: 'vnet-h8' });
    const asBridge = domainXml({ name: 'vm-net', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet0' });
    await call(ctx, 'vm-net', 'prepare', asNetwork);
    await call(ctx, 'vm-net', 'start', asBridge);
    await call(ctx, 'vm-net', 'started', asBridge);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, hostname: 'vm-net' }]);
    await call(ctx, 'vm-net', 'stopped', asNetwork);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    await call(ctx, 'vm-net', 'release', asNetwork);
    expect(await ctx.records.list()).toEqual([]);

    const m = meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.50'/>`);
    const U2 = '00000000-0000-4000-8000-000000000002';
    const prep = domainXml({
      name: 'fixed',
      uuid: U2,
      mac: MAC,
      type: 'network',
      network: 'vnet-h8',
      metadata: m,
    });
    await call(ctx, 'fixed', 'prepare', prep);
    expect((await ctx.records.get(U2))?.ports[0]).toMatchObject({ kind: 'bridge', ip: '10.77.0.50' });
    const run = domainXml({ name: 'fixed', uuid: U2, mac: MAC, bridge: 'vbr-h8', tap: 'vnet1', metadata: m });
    await call(ctx, 'fixed', 'start', run);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([
      { mac: MAC, ip: '10.77.0.50', hostname: 'fixed' },
    ]);
  });

  it('a domain with nothing on virtnet costs nothing', async () => {
    const ctx = makeContext();
    const xml = domainXml({ name: 'x', uuid: U, mac: MAC, bridge: 'br0', tap: 'vnet1' });
    for (const op of ['prepare', 'start', 'started', 'stopped', 'release']) await call(ctx, 'x', op, xml);
    expect(ctx.engine.calls).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it("type='ethernet': virtnet attaches the tap, and detaches it at stop if still there", async () => {
    const ctx = makeContext();
    const m = meta(`<virtnet:interface index='0' network='vnet-h8'/>`);
    const run = domainXml({ name: 'e', uuid: U, mac: MAC, type: 'ethernet', tap: 'tap9', metadata: m });
    await call(
      ctx,
      'e',
      'prepare',
      domainXml({ name: 'e', uuid: U, mac: MAC, type: 'ethernet', metadata: m }),
    );
    await call(ctx, 'e', 'start', run);
    expect(ctx.engine.info('vnet-h8')?.ports).toEqual(['tap9']);
    await call(
      ctx,
      'e',
      'stopped',
      domainXml({ name: 'e', uuid: U, mac: MAC, type: 'ethernet', metadata: m }),
    );
    expect(ctx.engine.calls).toContain('detachPort vnet-h8 tap9');
    expect(ctx.engine.info('vnet-h8')?.ports).toEqual([]);
  });

  it('prepare fails on a conflict (IP or host port taken) and reserves nothing', async () => {
    const ctx = makeContext();
    await lifecycle(ctx);
    const U2 = uuidFor(2);
    const m2 = meta(
      `<virtnet:interface mac='52:54:00:aa:bb:02' ip='10.77.0.50'><virtnet:forward proto='tcp' host-port='8080'/></virtnet:interface>`,
    );
    const xml2 = domainXml({
      name: 'web2',
      uuid: U2,
      mac: '52:54:00:aa:bb:02',
      bridge: 'vbr-h8',
      metadata: m2,
    });
    const err = await call(ctx, 'web2', 'prepare', xml2).catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toMatch(/IP address taken on network 'vnet-h8' by domain 'web'/);
    expect(err.message).toMatch(/host port tcp\/8080 already forwarded to domain 'web'/);
    expect(await ctx.records.get(U2)).toBeUndefined();
  });

  it('prepare fails on bad metadata and on a stopped virtnet network', async () => {
    const ctx = makeContext();
    const bad = meta(`<virtnet:interface mac='${MAC}' ip='10.99.0.5'/>`);
    await expect(call(ctx, 'web', 'prepare', at('prepare', bad))).rejects.toThrow(ValidationError);
    ctx.engine.nets.delete('vnet-h8');
    await expect(call(ctx, 'web', 'prepare', at('prepare'))).rejects.toThrow(/'vnet-h8' not running/);
  });

  it('a failing start rolls back what it did and keeps only the reservation', async () => {
    const ctx = makeContext();
    await call(ctx, 'web', 'prepare', at('prepare'));
    ctx.forwarder.fail = true;
    await expect(call(ctx, 'web', 'start', at('run'))).rejects.toThrow(/Could not process rule/);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    expect((await ctx.records.get(U))?.phase).toBe('prepared');
    await call(ctx, 'web', 'stopped', at('stop'));
    await call(ctx, 'web', 'release', at('stop'));
    expect(await ctx.records.list()).toEqual([]);
  });

  it('a failure at started is reported but everything that worked stays recorded for stop', async () => {
    const ctx = makeContext();
    await call(ctx, 'web', 'prepare', at('prepare'));
    ctx.forwarder.fail = true;
    await expect(call(ctx, 'web', 'started', at('run'))).rejects.toThrow(/port forwards/);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toHaveLength(1);
    ctx.forwarder.fail = false;
    await call(ctx, 'web', 'stopped', at('stop'));
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
  });

  it('reconnect re-ensures without removing anything; a daemon restart reconciles records', async () => {
    const ctx = makeContext();
    await lifecycle(ctx);
    const before = [...ctx.engine.calls];
    await call(ctx, 'web', 'reconnect', at('run'));
    expect(ctx.engine.calls.slice(before.length).filter((c) => c.startsWith('remove'))).toEqual([]);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toHaveLength(1);
    // Network restarted under us: hosts and rules gone; reconcile puts them back.
    ctx.engine.up('vnet-h8', 'vbr-h8');
    ctx.forwarder.installed.clear();
    expect(await reconcileRecords(ctx)).toEqual([]);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    expect(ctx.forwarder.installed.has(U)).toBe(true);
  });

  it("network hook 'started' re-applies the forwards of running domains on that libvirt network", async () => {
    const ctx = makeContext();
    const m = meta(
      `<virtnet:interface mac='${MAC}' ip='192.168.122.50'><virtnet:forward proto='tcp' host-port='2222' guest-port='22'/></virtnet:interface>`,
    );
    const xml = domainXml({
      name: 'g',
      uuid: U,
      mac: MAC,
      type: 'network',
      network: 'default',
      tap: 'vnet0',
      metadata: m,
    });
    await call(ctx, 'g', 'prepare', xml);
    await call(ctx, 'g', 'start', xml);
    expect(ctx.forwarder.installed.get(U)?.rules[0]).toMatchObject({
      guestIp: '192.168.122.50',
      network: 'default',
    });
    expect(ctx.engine.calls).toEqual([]); // nothing in virtnet's networks
    ctx.forwarder.installed.clear();
    const hookData = `<hookData><network><name>default</name><bridge name='virbr0'/></network></hookData>`;
    await handleHookEvent(ctx, {
      object: 'default',
      operation: 'started',
      subOperation: 'begin',
      extra: '-',
      xml: hookData,
    });
    expect(ctx.forwarder.installed.has(U)).toBe(true);
    expect(ctx.emitted.at(-1)).toEqual({
      event: 'libvirt-network',
      payload: { name: 'default', operation: 'started' },
    });
  });

  it('migrate/restore pass the XML through unchanged; unknown operations do nothing', async () => {
    const ctx = makeContext();
    const xml = at('run');
    expect(await call(ctx, 'web', 'migrate', xml)).toBe(xml);
    expect(await call(ctx, 'web', 'restore', xml)).toBe(xml);
    expect(await call(ctx, 'web', 'attach', xml)).toBe('');
  });

  it('rejects XML of the wrong hook and a name that is not the object', async () => {
    const ctx = makeContext();
    await expect(
      handleHookEvent(ctx, {
        kind: 'network',
        object: 'web',
        operation: 'started',
        subOperation: 'begin',
        extra: '-',
        xml: at('run'),
      }),
    ).rejects.toThrow(/not the XML of a network hook call/);
    await expect(call(ctx, 'other', 'start', at('run'))).rejects.toThrow(/does not match the hook's object/);
    await expect(call(ctx, 'web', 'start', '<nope/>')).rejects.toThrow(ValidationError);
  });
});

describe('deferred port forwards (the daemon)', () => {
  it('start returns before the forwards are in; started waits for them and reports their failure', async () => {
    const ctx = makeContext();
    ctx.deferred = new Map();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const real = ctx.forwarder.apply.bind(ctx.forwarder);
    ctx.forwarder.apply = async (f) => {
      await gate;
      return real(f);
    };
    await call(ctx, 'web', 'prepare', at('prepare'));
    await call(ctx, 'web', 'start', at('run')); // does not wait for the gate
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toHaveLength(1);
    expect(ctx.forwarder.installed.size).toBe(0);
    const started = call(ctx, 'web', 'started', at('run'));
    await new Promise((r) => setTimeout(r, 20));
    expect(ctx.forwarder.installed.size).toBe(0); // still waiting
    release();
    await started;
    expect(ctx.forwarder.installed.has(U)).toBe(true);

    // A failing background install surfaces at the next call; stop still cleans up.
    await call(ctx, 'web', 'stopped', at('stop'));
    ctx.forwarder.fail = true;
    await call(ctx, 'web', 'start', at('run'));
    await expect(call(ctx, 'web', 'started', at('run'))).rejects.toThrow(
      /port forwards: nft: Could not process rule/,
    );
    ctx.forwarder.fail = false;
    await call(ctx, 'web', 'stopped', at('stop'));
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    // stopped removes the forwards in the background; release waits for that.
    expect(ctx.deferred.size).toBe(1);
    expect((await ctx.records.get(U))?.forwardsApplied).toBe(true);
    await call(ctx, 'web', 'release', at('stop'));
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(ctx.deferred.size).toBe(0);
    expect(await ctx.records.get(U)).toBeUndefined();
  });

  it('stopped returns before the forwards are removed; release waits, and retries a failed removal', async () => {
    const ctx = makeContext();
    ctx.deferred = new Map();
    await lifecycle(ctx);
    expect(ctx.forwarder.installed.has(U)).toBe(true);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const real = ctx.forwarder.remove.bind(ctx.forwarder);
    let failOnce = true;
    ctx.forwarder.remove = async (f) => {
      await gate;
      if (failOnce) {
        failOnce = false;
        throw new Error('nft: No such file or directory');
      }
      return real(f);
    };
    await call(ctx, 'web', 'stopped', at('stop')); // does not wait for the gate
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    expect(ctx.forwarder.installed.has(U)).toBe(true);
    const rel = call(ctx, 'web', 'release', at('stop'));
    await new Promise((r) => setTimeout(r, 20));
    expect(ctx.forwarder.installed.has(U)).toBe(true); // still waiting
    release();
    await rel; // the background removal failed; release removed them itself
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(ctx.deferred.size).toBe(0);
    expect(await ctx.records.get(U)).toBeUndefined();
  });

  it('a daemon restarted between stopped and release removes the forwards left behind', async () => {
    const ctx = makeContext();
    ctx.deferred = new Map();
    await lifecycle(ctx);
    const real = ctx.forwarder.remove.bind(ctx.forwarder);
    ctx.forwarder.remove = () => new Promise(() => {}); // never finishes: the daemon dies meanwhile
    await call(ctx, 'web', 'stopped', at('stop'));
    ctx.forwarder.remove = real;
    ctx.deferred = new Map(); // a new daemon
    expect(await reconcileRecords(ctx)).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect((await ctx.records.get(U))?.forwardsApplied).toBeUndefined();
    expect((await ctx.records.get(U))?.phase).toBe('prepared');
  });
});

describe('concurrency', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('50 domains starting at once on one network lose no reservation and no rule (file records + file locks)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh8-conc-'));
    const ctx = makeContext({
      records: new FileRecordStore(join(dir, 'domains')),
      locks: new LockManager({ dir: join(dir, 'locks') }),
    });
    const N = 50;
    const one = async (i: number) => {
      const m = meta(
        `<virtnet:interface mac='${macFor(i)}' ip='10.77.0.${10 + i}'><virtnet:forward proto='tcp' host-port='${20000 + i}' guest-port='22'/></virtnet:interface>`,
      );
      const x = (tap?: string) =>
        domainXml({ name: `vm${i}`, uuid: uuidFor(i), mac: macFor(i), bridge: 'vbr-h8', tap, metadata: m });
      await call(ctx, `vm${i}`, 'prepare', x());
      await call(ctx, `vm${i}`, 'start', x(`vnet${i}`));
      await call(ctx, `vm${i}`, 'started', x(`vnet${i}`));
    };
    await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
    const hosts = ctx.engine.info('vnet-h8')!.extraHosts;
    expect(hosts).toHaveLength(N);
    expect(new Set(hosts.map((h) => h.ip)).size).toBe(N);
    expect(ctx.forwarder.installed.size).toBe(N);
    expect((await ctx.records.list()).filter((r) => r.phase === 'started')).toHaveLength(N);
    expect(ctx.emitted.filter((e) => e.event === 'port-attached')).toHaveLength(N);
    // And all of them stop at once.
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        call(
          ctx,
          `vm${i}`,
          'stopped',
          domainXml({ name: `vm${i}`, uuid: uuidFor(i), mac: macFor(i), bridge: 'vbr-h8' }),
        ).then(() =>
          call(
            ctx,
            `vm${i}`,
            'release',
            domainXml({ name: `vm${i}`, uuid: uuidFor(i), mac: macFor(i), bridge: 'vbr-h8' }),
          ),
        ),
      ),
    );
    expect(ctx.engine.info('vnet-h8')!.extraHosts).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(readdirSync(join(dir, 'domains')).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  });

  it('two domains racing for the same IP: exactly one gets it', async () => {
    const ctx = makeContext();
    const x = (i: number) =>
      domainXml({
        name: `r${i}`,
        uuid: uuidFor(100 + i),
        mac: macFor(100 + i),
        bridge: 'vbr-h8',
        metadata: meta(`<virtnet:interface mac='${macFor(100 + i)}' ip='10.77.0.9'/>`),
      });
    const results = await Promise.allSettled([
      call(ctx, 'r1', 'prepare', x(1)),
      call(ctx, 'r2', 'prepare', x(2)),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });
});
