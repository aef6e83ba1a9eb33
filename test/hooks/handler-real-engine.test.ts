/**
 * The hook handler on the REAL engine (LinuxEngine on the dry-run runner, with the host-side doubles of
 * test/helpers/engine-fakes.ts): what the handler asks of the engine must be what the engine takes.
 * The handler's other tests use a faster in-memory engine; these cases run on both, so a contract
 * mismatch (e.g. a host entry the real planner refuses) fails here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LinuxEngine } from '../../src/engine/engine.js';
import { handleHookEvent } from '../../src/hooks/handler.js';
import { dryRunEngine, filesEnding } from '../helpers/engine-fakes.js';
import { domainXml, makeContext, meta, type TestContext } from './fakes.js';

const U = '00000000-0000-4000-8000-0000000000a1';
const MAC = '52:54:00:aa:bb:01';

describe.each(['fake', 'real'] as const)('hook handler on the %s engine', (which) => {
  let dir: string;
  let ctx: TestContext;
  let engine: LinuxEngine | undefined;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh-real-'));
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
  const call = (object: string, operation: string, xml: string) =>
    handleHookEvent(ctx, { object, operation, subOperation: 'begin', extra: '-', xml });

  it("a plain VM (no metadata, type='bridge' and type='network'): MAC + domain name, no address", async () => {
    const asNetwork = domainXml({ name: 'vm-net', uuid: U, mac: MAC, type: 'network', network: 'vnet-h8' });
    const asBridge = domainXml({ name: 'vm-net', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet0' });
    await call('vm-net', 'prepare', asNetwork);
    await call('vm-net', 'start', asBridge);
    await call('vm-net', 'started', asBridge);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, hostname: 'vm-net' }]);
    if (which === 'real') expect(filesEnding(dir, '.hostsfile')).toContain(`${MAC},vm-net\n`);
    await call('vm-net', 'stopped', asNetwork);
    await call('vm-net', 'release', asNetwork);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
    if (which === 'real') expect(filesEnding(dir, '.hostsfile')).not.toContain(MAC);
  });

  it('a domain name that is no host name is simply not registered; the VM starts', async () => {
    const xml = domainXml({ name: 'my_vm', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet0' });
    await call('my_vm', 'prepare', xml);
    await call('my_vm', 'start', xml);
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([]);
  });

  it('a fixed IP from metadata is reserved with the name', async () => {
    const m = meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.50'/>`);
    await call(
      'web',
      'prepare',
      domainXml({ name: 'web', uuid: U, mac: MAC, type: 'network', network: 'vnet-h8', metadata: m }),
    );
    await call(
      'web',
      'start',
      domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-h8', tap: 'vnet0', metadata: m }),
    );
    expect(ctx.engine.info('vnet-h8')?.extraHosts).toEqual([{ mac: MAC, ip: '10.77.0.50', hostname: 'web' }]);
    if (which === 'real') expect(filesEnding(dir, '.hostsfile')).toContain(`${MAC},10.77.0.50,web\n`);
  });
});
