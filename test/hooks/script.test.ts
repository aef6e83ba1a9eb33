/**
 * hooks/qemu (= hooks/network) as libvirt runs it, without a daemon: which hook it is from its path,
 * operations it ignores, migrate/restore pass-through, argument count, and the hand-over to the
 * in-process handler (a stand-in main.js records what it got) when no daemon owns the bus name.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRecordStore, hookPaths } from '../../src/hooks/records.js';
import { projectRoot } from '../helpers/shared.js';

const XML =
  "<domain type='qemu'>\n  <name>vm1</name>\n  <description>a &amp; b 'quoted' \"double\" $HOME `x` \\\\n</description>\n</domain>\n";

describe('hooks/qemu and hooks/network (shell)', () => {
  let dir: string;
  let qemu: string;
  let network: string;
  let record: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vh8-script-'));
    mkdirSync(join(dir, 'qemu.d'));
    mkdirSync(join(dir, 'network.d'));
    qemu = join(dir, 'qemu.d', 'virtnet');
    network = join(dir, 'network.d', 'virtnet');
    symlinkSync(join(projectRoot, 'hooks', 'qemu'), qemu);
    symlinkSync(join(projectRoot, 'hooks', 'network'), network);
    record = join(dir, 'record.json');
    // Stand-in for dist/src/hooks/main.js: records argv and stdin, fails like the handler would.
    writeFileSync(
      join(dir, 'main.mjs'),
      `import { readFileSync, writeFileSync } from 'node:fs';
const stdin = readFileSync(0, 'utf8');
writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv.slice(2), stdin }));
if (process.argv[4] === 'prepare' && stdin.includes('FAIL')) { process.stderr.write('virtnet: qemu vm1 prepare: nope\\n'); process.exit(1); }
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (hook: string, args: string[], input = XML, env: Record<string, string> = {}) =>
    spawnSync(hook, args, {
      input,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}`,
        VIRTNET_HOOK_MAIN: join(dir, 'main.mjs'),
        ...env,
      },
    });

  it('ignored operations exit 0 with no output and no hand-over', () => {
    rmSync(record, { force: true });
    for (const [hook, op] of [
      [qemu, 'attach'],
      [qemu, 'port-created'],
      [network, 'prepare'],
      [network, 'migrate'],
    ] as const) {
      const r = run(hook, ['x', op, 'begin', '-']);
      expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
    }
    expect(() => readFileSync(record)).toThrow();
  });

  it('migrate and restore give the XML back byte for byte', () => {
    for (const op of ['migrate', 'restore']) {
      const r = run(qemu, ['vm1', op, 'begin', '-']);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(XML);
    }
  });

  it('a wrong argument count is a usage error (exit 2), one line', () => {
    const r = run(qemu, ['vm1', 'start', 'begin']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('without a daemon the event goes to the in-process handler with the hook kind, the arguments and the XML', () => {
    for (const [hook, kind, obj, op] of [
      [qemu, 'qemu', 'vm1', 'prepare'],
      [network, 'network', 'default', 'started'],
    ] as const) {
      rmSync(record, { force: true });
      const r = run(hook, [obj, op, 'begin', '-']);
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(readFileSync(record, 'utf8'));
      expect(got.argv).toEqual([kind, obj, op, 'begin', '-']);
      // $(cat) drops the final newline, the here-document adds one back: the XML arrives intact.
      expect(got.stdin).toBe(XML);
    }
  });

  it('the in-process handler’s exit code and line come through', () => {
    const r = run(qemu, ['vm1', 'prepare', 'begin', '-'], `${XML}<!-- FAIL -->\n`);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('virtnet: qemu vm1 prepare: nope\n');
  });

  it('no node and no daemon: a clear line; exit 1 only for prepare/start', () => {
    const a = run(qemu, ['vm1', 'start', 'begin', '-'], XML, {
      VIRTNET_NODE: join(dir, 'no-such-node'),
      VIRTNET_HOOK_MAIN: join(dir, 'missing.js'),
    });
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(
      /^virtnet: qemu vm1 start: no virtnet daemon on the bus and .*missing\.js is missing\n$/,
    );
    const b = run(qemu, ['vm1', 'stopped', 'end', '-'], XML, { VIRTNET_HOOK_MAIN: join(dir, 'missing.js') });
    expect(b.status).toBe(0);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
  });

  describe('calls with nothing to do end in the shell, decided from the domain’s hook record', () => {
    const UUID = '720a1d5a-9c10-4ce5-8614-f1cfed9481be';
    const DOM = `<domain type='qemu' id='1'>\n  <name>vm1</name>\n  <uuid>${UUID}</uuid>\n  <devices/>\n</domain>\n`;
    const PORT = `<hookData>\n  <network>\n    <name>net1</name>\n    <uuid>2ef76e20-c538-4542-ad71-f3aad8870e49</uuid>\n  </network>\n  <networkport>\n    <uuid>b093c970-3df5-4dcc-b9cb-a76e75d848cf</uuid>\n    <owner>\n      <name>vm1</name>\n      <uuid>${UUID}</uuid>\n    </owner>\n    <mac address='52:54:00:aa:bb:01'/>\n  </networkport>\n</hookData>\n`;
    let runDir: string;
    // Written by the real record store, in the shape the handler writes and reads.
    const setRecord = async (phase: 'prepared' | 'started' | undefined, forwardsApplied = false) => {
      const store = new FileRecordStore(hookPaths(runDir).records);
      if (phase === undefined) await store.delete(UUID);
      else
        await store.put({
          version: 1,
          domain: 'vm1',
          uuid: UUID,
          phase,
          ports: [],
          updatedAt: new Date().toISOString(),
          ...(forwardsApplied ? { forwardsApplied } : {}),
        });
    };
    /** Whether the call reached the handler (the stand-in main.js records what it got). */
    const handedOver = (hook: string, obj: string, op: string, input: string, env = {}) => {
      rmSync(record, { force: true });
      // The daemon's unique name on a bus that does not exist: a call that is not ended in the
      // shell fails to connect and goes to the in-process stand-in.
      const r = run(hook, [obj, op, 'begin', '-'], input, { VIRTNET_RUN_DIR: runDir, ...env });
      expect(r.status, r.stderr).toBe(0);
      try {
        readFileSync(record);
        return true;
      } catch {
        return false;
      }
    };
    beforeAll(() => {
      runDir = join(dir, 'run');
      mkdirSync(join(runDir, 'hooks', 'domains'), { recursive: true });
      writeFileSync(join(runDir, 'daemon.busname'), ':1.42\n');
    });

    it('no record: start, started, stopped, release end at once; prepare, reconnect and a hot-plug go on', async () => {
      await setRecord(undefined);
      for (const op of ['start', 'started', 'stopped', 'release'])
        expect(handedOver(qemu, 'vm1', op, DOM), op).toBe(false);
      for (const op of ['prepare', 'reconnect']) expect(handedOver(qemu, 'vm1', op, DOM), op).toBe(true);
      expect(handedOver(network, 'net1', 'port-created', PORT)).toBe(true);
      expect(handedOver(network, 'net1', 'port-deleted', PORT)).toBe(true);
    });

    it('a prepared record: port-created/-deleted end at once (the qemu hook does the work); the qemu calls go on', async () => {
      await setRecord('prepared');
      expect(handedOver(network, 'net1', 'port-created', PORT)).toBe(false);
      expect(handedOver(network, 'net1', 'port-deleted', PORT)).toBe(false);
      for (const op of ['prepare', 'start', 'started', 'stopped', 'release'])
        expect(handedOver(qemu, 'vm1', op, DOM), op).toBe(true);
    });

    it('a started record: started ends at once; stopped, release and a hot-plug go on', async () => {
      await setRecord('started');
      expect(handedOver(qemu, 'vm1', 'started', DOM)).toBe(false);
      for (const op of ['start', 'stopped', 'release', 'reconnect'])
        expect(handedOver(qemu, 'vm1', op, DOM), op).toBe(true);
      expect(handedOver(network, 'net1', 'port-created', PORT)).toBe(true);
    });

    it('with port forwards, started goes on (it waits for them); port-created/-deleted of a prepared one still end', async () => {
      await setRecord('started', true);
      expect(handedOver(qemu, 'vm1', 'started', DOM)).toBe(true);
      await setRecord('prepared', true);
      expect(handedOver(network, 'net1', 'port-deleted', PORT)).toBe(false);
      expect(handedOver(qemu, 'vm1', 'release', DOM)).toBe(true);
    });

    it('nothing is decided without the daemon’s daemon.busname in the run dir, or without a UUID', async () => {
      await setRecord(undefined);
      const elsewhere = join(dir, 'run-elsewhere');
      mkdirSync(join(elsewhere, 'hooks', 'domains'), { recursive: true });
      expect(handedOver(qemu, 'vm1', 'start', DOM, { VIRTNET_RUN_DIR: elsewhere })).toBe(true);
      expect(handedOver(qemu, 'vm1', 'start', XML)).toBe(true);
      await setRecord('prepared');
      expect(handedOver(network, 'net1', 'port-created', PORT.replace(/<owner>[\s\S]*<\/owner>/, ''))).toBe(
        true,
      );
      await setRecord(undefined);
    });
  });

  it('called by a path that names no hook: exit 0 and say so', () => {
    const odd = join(dir, 'odd-name');
    symlinkSync(join(projectRoot, 'hooks', 'qemu'), odd);
    const r = run(odd, ['vm1', 'prepare', 'begin', '-']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/cannot tell the hook/);
  });
});
