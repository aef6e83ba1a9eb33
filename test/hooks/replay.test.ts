/**
 * Replays the hook calls captured from libvirt 9.0 (../shared/libvirt-hooks/, read in place) through
 * the handler in-process: as captured (a domain on libvirt's own `default` network), and transformed
 * in memory so the same domain is on a virtnet bridge, or keeps libvirt's network with virtnet port
 * forwards in its metadata.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { handleHookEvent } from '../../src/hooks/handler.js';
import { libvirtHooksDir, missingShared } from '../helpers/shared.js';
import { makeContext, meta, type TestContext } from './fakes.js';

const skip = missingShared(libvirtHooksDir);

interface Captured {
  file: string;
  hook: 'qemu' | 'network';
  args: [string, string, string, string];
  stdin: string;
}

function load(): Captured[] {
  return readdirSync(libvirtHooksDir)
    .filter((f) => f.endsWith('.args'))
    .sort()
    .map((f) => {
      const base = f.slice(0, -'.args'.length);
      const args = readFileSync(join(libvirtHooksDir, f), 'utf8').split('\n').slice(0, 4) as Captured['args'];
      return {
        file: base,
        hook: base.includes('-qemu-') ? 'qemu' : 'network',
        args,
        stdin: readFileSync(join(libvirtHooksDir, `${base}.stdin.xml`), 'utf8'),
      };
    });
}

const MAC = '52:54:00:aa:bb:01';
const UUID = '720a1d5a-9c10-4ce5-8614-f1cfed9481be';

async function replay(
  ctx: TestContext,
  calls: Captured[],
  transform: (c: Captured) => string = (c) => c.stdin,
) {
  const out: string[] = [];
  for (const c of calls) {
    const [object, operation, subOperation, extra] = c.args;
    out.push(
      await handleHookEvent(ctx, { kind: c.hook, object, operation, subOperation, extra, xml: transform(c) }),
    );
  }
  return out;
}

describe.skipIf(skip)('replay of libvirt 9.0 hook calls (in-process)', () => {
  const calls = skip ? [] : load();

  it('has the 11 captured calls', () => {
    expect(calls.map((c) => `${c.hook} ${c.args.join(' ')}`)).toEqual([
      'network default start begin -',
      'network default started begin -',
      'network default updated begin -',
      'qemu golden-vm prepare begin -',
      'network default port-created begin -',
      'qemu golden-vm start begin -',
      'qemu golden-vm started begin -',
      'qemu golden-vm stopped end -',
      'network default port-deleted begin -',
      'qemu golden-vm release end -',
      'network default stopped end -',
    ]);
  });

  it('as captured: a domain on a libvirt network without virtnet metadata — virtnet only reports', async () => {
    const ctx = makeContext();
    const out = await replay(ctx, calls);
    expect(out.every((o) => o === '')).toBe(true);
    expect(ctx.engine.calls).toEqual([]);
    expect(ctx.forwarder.calls).toEqual([]);
    expect(await ctx.records.list()).toEqual([]);
    expect(ctx.emitted).toEqual([
      { event: 'libvirt-network', payload: { name: 'default', operation: 'start' } },
      { event: 'libvirt-network', payload: { name: 'default', operation: 'started' } },
      { event: 'libvirt-network', payload: { name: 'default', operation: 'updated' } },
      {
        event: 'libvirt-network',
        payload: { name: 'default', operation: 'port-created', domain: 'golden-vm', mac: MAC },
      },
      {
        event: 'libvirt-network',
        payload: { name: 'default', operation: 'port-deleted', domain: 'golden-vm', mac: MAC },
      },
      { event: 'libvirt-network', payload: { name: 'default', operation: 'stopped' } },
    ]);
  });

  it('the same domain on a virtnet bridge (transformed in memory): reserved, forwarded, undone at stop', async () => {
    const ctx = makeContext();
    const md = meta(
      `<virtnet:interface mac='${MAC}' ip='10.77.0.60'><virtnet:forward proto='tcp' host-port='8022' guest-port='22'/></virtnet:interface>`,
    );
    const onVirtnet = (c: Captured) =>
      c.hook === 'network'
        ? c.stdin
        : c.stdin
            .replace("<interface type='network'>", "<interface type='bridge'>")
            .replace(/<source network='default'[^>]*\/>/, "<source bridge='vbr-h8'/>")
            .replace('</uuid>', `</uuid>\n  <metadata>${md}</metadata>`);
    const qemu = calls.filter((c) => c.hook === 'qemu');
    // Sanity: the transform did apply to the captured XML shapes.
    expect(onVirtnet(qemu[1]!)).toContain("<source bridge='vbr-h8'/>");
    expect(onVirtnet(qemu[1]!)).toContain("<target dev='vnet0'/>");
    expect(onVirtnet(qemu[3]!)).not.toContain('<target dev'); // stopped

    await replay(ctx, calls.slice(0, 7), onVirtnet); // up to and including `started`
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([
      { mac: MAC, ip: '10.77.0.60', hostname: 'golden-vm' },
    ]);
    expect(ctx.forwarder.installed.get(UUID)?.rules).toEqual([
      {
        proto: 'tcp',
        family: 'ipv4',
        hostPort: 8022,
        guestPort: 22,
        guestIp: '10.77.0.60',
        network: 'vnet-h8',
        bridge: 'vbr-h8',
      },
    ]);
    expect(ctx.emitted.filter((e) => e.event === 'port-attached')).toEqual([
      {
        event: 'port-attached',
        payload: { network: 'vnet-h8', ifname: 'vnet0', mac: MAC, domain: 'golden-vm' },
      },
    ]);

    await replay(ctx, calls.slice(7), onVirtnet); // stopped, port-deleted, release, network stopped
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(ctx.emitted.filter((e) => e.event === 'port-detached')).toEqual([
      { event: 'port-detached', payload: { network: 'vnet-h8', ifname: 'vnet0', domain: 'golden-vm' } },
    ]);
    expect(await ctx.records.list()).toEqual([]);
  });

  it("libvirt's network with virtnet port forwards: installed at start, re-applied when libvirt restarts the network", async () => {
    const ctx = makeContext();
    const md = meta(
      `<virtnet:interface mac='${MAC}' ip='192.168.122.60'><virtnet:forward proto='tcp' host-port='8080' guest-port='80'/></virtnet:interface>`,
    );
    const withMeta = (c: Captured) =>
      c.hook === 'network' ? c.stdin : c.stdin.replace('</uuid>', `</uuid><metadata>${md}</metadata>`);
    await replay(ctx, calls.slice(0, 7), withMeta);
    expect(ctx.forwarder.installed.get(UUID)?.rules).toEqual([
      {
        proto: 'tcp',
        family: 'ipv4',
        hostPort: 8080,
        guestPort: 80,
        guestIp: '192.168.122.60',
        network: 'default',
      },
    ]);
    expect(ctx.engine.calls).toEqual([]);
    // libvirt restarts `default` (flushing its rules): the `started` call puts ours back.
    ctx.forwarder.installed.clear();
    await replay(ctx, [calls[1]!], withMeta);
    expect(ctx.forwarder.installed.has(UUID)).toBe(true);
    await replay(ctx, calls.slice(7), withMeta);
    expect(ctx.forwarder.installed.size).toBe(0);
    expect(await ctx.records.list()).toEqual([]);
  });
});
