import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import {
  type ConfigEvent,
  ConfigReconciler,
  type NetworkRegistry,
  parseWithCurrent,
} from '../../src/watch/config-reconciler.js';
import { ConfigWatcher } from '../../src/watch/config-watcher.js';

const xml = (name: string, host = '') => `<network>
  <name>${name}</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <forward mode='nat'/>
  <bridge name='vbr-${name}'/>
  <mac address='52:54:00:00:00:01'/>
  <ip address='10.9.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.9.0.10' end='10.9.0.99'/>${host}</dhcp>
  </ip>
</network>
`;

class FakeRegistry implements NetworkRegistry {
  defs = new Map<string, { network: Network; xml?: string }>();
  get(name: string) {
    return this.defs.get(name);
  }
  async define(network: Network, text: string) {
    this.defs.set(network.name, { network, xml: text });
  }
  async undefine(name: string) {
    this.defs.delete(name);
  }
}

class FakeEngine {
  active = new Set<string>();
  updates: Network[] = [];
  stops: string[] = [];
  failUpdate = false;
  isActive(n: string) {
    return this.active.has(n);
  }
  async update(net: Network) {
    if (this.failUpdate) throw new Error('dnsmasq: restart failed');
    this.updates.push(net);
  }
  async stop(n: string) {
    this.stops.push(n);
    this.active.delete(n);
  }
}

describe('ConfigReconciler', () => {
  let dir: string;
  let reg: FakeRegistry;
  let eng: FakeEngine;
  let events: ConfigEvent[];
  const file = (n: string) => join(dir, `${n}.xml`);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vh8-rec-'));
    reg = new FakeRegistry();
    eng = new FakeEngine();
    events = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const make = (onRemove?: 'stop' | 'keep-running') => {
    const r = new ConfigReconciler({ registry: reg, engine: eng, ...(onRemove ? { onRemove } : {}) });
    r.on('event', (e) => events.push(e));
    return r;
  };

  it('defines a new file, redefines a changed one, ignores an unchanged one', async () => {
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    expect((await r.handle('lab', file('lab')))?.event).toBe('defined');
    expect(reg.get('lab')?.network.bridge.name).toBe('vbr-lab');
    expect(await r.handle('lab', file('lab'))).toBeUndefined();
    writeFileSync(file('lab'), xml('lab', "<host mac='52:54:00:aa:00:01' ip='10.9.0.50'/>"));
    const ev = await r.handle('lab', file('lab'));
    expect(ev).toMatchObject({ event: 'updated', live: false });
    expect(eng.updates).toHaveLength(0);
    expect(reg.get('lab')?.network.ips[0]?.dhcp?.hosts).toHaveLength(1);
  });

  it('reconciles a running network live through Engine.update', async () => {
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    eng.active.add('lab');
    writeFileSync(file('lab'), xml('lab', "<host mac='52:54:00:aa:00:01' ip='10.9.0.50'/>"));
    expect(await r.handle('lab', file('lab'))).toMatchObject({ event: 'updated', live: true });
    expect(eng.updates).toHaveLength(1);
    expect(eng.updates[0]?.ips[0]?.dhcp?.hosts[0]?.ip).toBe('10.9.0.50');
  });

  it('a failed live update keeps the old definition and reports failed', async () => {
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    const before = reg.get('lab')!.network;
    eng.active.add('lab');
    eng.failUpdate = true;
    writeFileSync(file('lab'), xml('lab', "<host mac='52:54:00:aa:00:01' ip='10.9.0.50'/>"));
    expect(await r.handle('lab', file('lab'))).toMatchObject({ event: 'failed' });
    expect(reg.get('lab')!.network).toEqual(before);
  });

  it('an invalid file is reported and leaves the running network and its definition untouched', async () => {
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    eng.active.add('lab');
    const before = reg.get('lab');
    for (const bad of [
      '<network><name>lab</name>',
      xml('lab').replace('10.9.0.1', '10.9.0.300'),
      xml('other'),
    ]) {
      writeFileSync(file('lab'), bad);
      const ev = await r.handle('lab', file('lab'));
      expect(ev?.event).toBe('invalid');
      expect(ev?.reason).toBeTruthy();
    }
    expect(reg.get('lab')).toBe(before);
    expect(eng.updates).toHaveLength(0);
    expect(eng.active.has('lab')).toBe(true);
    expect(events.at(-1)?.reason).toContain('must be named other.xml');
  });

  it('removing the file undefines; a running network keeps running by default', async () => {
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    eng.active.add('lab');
    unlinkSync(file('lab'));
    expect(await r.handle('lab', file('lab'))).toMatchObject({ event: 'undefined' });
    expect(eng.stops).toEqual([]);
    expect(eng.active.has('lab')).toBe(true);
    expect(reg.get('lab')).toBeUndefined();
  });

  it("with onRemove 'stop' a running network is stopped first", async () => {
    const r = make('stop');
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    eng.active.add('lab');
    unlinkSync(file('lab'));
    await r.handle('lab', file('lab'));
    expect(eng.stops).toEqual(['lab']);
    expect(events.map((e) => e.event)).toEqual(['defined', 'stopped', 'undefined']);
  });

  it('keeps uuid, bridge name and MAC of the current definition when the file omits them', () => {
    const cur = parseWithCurrent(xml('lab'), undefined);
    const bare = "<network><name>lab</name><ip address='10.9.0.1' prefix='24'/></network>";
    const a = parseWithCurrent(bare, cur);
    expect(a.uuid).toBe(cur.uuid);
    expect(a.bridge.name).toBe('vbr-lab');
    expect(a.mac).toBe('52:54:00:00:00:01');
  });

  it('end to end with the watcher: an invalid file dropped in while the network runs', async () => {
    const w = new ConfigWatcher({ dir, debounceMs: 30 });
    const r = make();
    writeFileSync(file('lab'), xml('lab'));
    await r.handle('lab', file('lab'));
    eng.active.add('lab');
    r.attach(w);
    await w.start();
    try {
      writeFileSync(file('lab'), '<network><name>lab</name><ip address="nope"/></network>');
      writeFileSync(file('junk'), 'not xml at all');
      const end = Date.now() + 3000;
      while (events.filter((e) => e.event === 'invalid').length < 2 && Date.now() < end)
        await new Promise((res) => setTimeout(res, 10));
      expect(
        events
          .filter((e) => e.event === 'invalid')
          .map((e) => e.name)
          .sort(),
      ).toEqual(['junk', 'lab']);
      expect(eng.active.has('lab')).toBe(true);
      expect(eng.updates).toHaveLength(0);
      expect(reg.get('lab')?.network.ips[0]?.address).toBe('10.9.0.1');
      // A valid edit afterwards is applied live.
      const t0 = Date.now();
      writeFileSync(file('lab'), xml('lab', "<host mac='52:54:00:aa:00:02' ip='10.9.0.51'/>"));
      while (!events.some((e) => e.event === 'updated') && Date.now() < t0 + 3000)
        await new Promise((res) => setTimeout(res, 5));
      const ms = Date.now() - t0;
      expect(events.find((e) => e.event === 'updated')).toMatchObject({ live: true });
      expect(ms).toBeLessThan(1000);
    } finally {
      await w.close();
    }
  });
});
