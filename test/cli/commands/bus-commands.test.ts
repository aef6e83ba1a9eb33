/**
 * virtnetctl's bus commands against the real bus service on a private system bus (fake engine — a
 * test double; the real engine runs in test/integration/daemon-*.test.ts): output, --json, exit codes
 * (2 usage, 3 not found, 4 access denied, 1 failure) and one-line errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type MessageBus } from '../../../src/bus/dbus.js';
import { main } from '../../../src/cli/main.js';
import { networkCodec } from '../../../src/config/codec.js';
import { ConfigStore } from '../../../src/config/store.js';
import { BusAuthorizer } from '../../../src/daemon/authorize.js';
import { VirtnetService } from '../../../src/daemon/service.js';
import { createDaemonHooks } from '../../../src/hooks/bus-adapter.js';
import { FileRecordStore, hookPaths } from '../../../src/hooks/records.js';
import { silentLogger } from '../../../src/util/log.js';
import { FakeEngine } from '../../daemon/fake-engine.js';
import { BUS_NAME, execOut, NOBODY, type PrivateBus, startPrivateBus } from '../../helpers/dbus.js';
import { missingPrereqs } from '../../helpers/require.js';
import { projectRoot } from '../../helpers/shared.js';
import { captureIo } from '../io.js';

const skip = missingPrereqs(['dbus-daemon'], { root: false });

const XML = `<network>
  <name>cli-net</name>
  <forward mode='nat'/>
  <bridge name='vh7br9'/>
  <ip address='10.79.0.1' prefix='24'><dhcp><range start='10.79.0.10' end='10.79.0.20'/></dhcp></ip>
</network>`;

describe.skipIf(skip)('virtnetctl bus commands', () => {
  let bus: PrivateBus;
  let conn: MessageBus;
  let service: VirtnetService;
  let engine: FakeEngine;
  let configDir: string;

  const run = async (argv: string[], files: Record<string, string> = {}) => {
    const io = captureIo(files);
    io.env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address, VIRTNET_RUN_DIR: join(configDir, 'run') };
    const code = await main(argv, io);
    return { code, out: io.out, err: io.err };
  };

  beforeAll(async () => {
    bus = await startPrivateBus();
    configDir = mkdtempSync(join(tmpdir(), 'vh7-cli-'));
    conn = await connectBus(bus.address);
    engine = new FakeEngine();
    const auth = new BusAuthorizer(conn, { timeoutMs: 3000 });
    service = new VirtnetService({
      bus: conn,
      engine,
      store: new ConfigStore(configDir),
      codec: networkCodec,
      authorize: (c, a, m) => auth.authorize(c, a, m),
      version: 'test',
      log: silentLogger(),
      // The daemon's hook side reads the records that name lease owners (GetLeasesWithDomains).
      hooks: createDaemonHooks({ engine, runDir: join(configDir, 'run'), log: silentLogger() }),
    });
    await conn.requestName(BUS_NAME, 4);
    await service.start();
  });

  afterAll(async () => {
    await service?.close();
    conn?.disconnect();
    await bus?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('define, list, info, dumpxml, start, autostart, leases, host-add/remove, stop, undefine', async () => {
    let r = await run(['define', 'net.xml'], { 'net.xml': XML });
    expect(r, r.err).toMatchObject({ code: 0, out: 'Network cli-net defined from net.xml\n' });

    r = await run(['list']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      'NAME     ACTIVE  AUTOSTART  BRIDGE  FORWARD\ncli-net  no      no         vh7br9  nat\n',
    );
    r = await run(['list', '--json']);
    expect(JSON.parse(r.out)).toEqual([
      expect.objectContaining({ name: 'cli-net', active: false, bridge: 'vh7br9', forwardMode: 'nat' }),
    ]);

    r = await run(['info', 'cli-net']);
    expect(r.out).toMatch(/^Name:\s+cli-net$/m);
    // This service runs without a publisher (as virtnetd --libvirt none).
    expect(r.out).toMatch(/^Libvirt:\s+off$/m);
    expect(r.out).toMatch(/^Object:\s+\/org\/virtnet\/network1\/network\/cli_2dnet$/m);

    r = await run(['dumpxml', 'cli-net']);
    expect(r.out).toContain("<bridge name='vh7br9'");

    r = await run(['start', 'cli-net']);
    expect(r).toMatchObject({ code: 0, out: 'Network cli-net started\n' });
    r = await run(['start', 'cli-net']);
    expect(r.code).toBe(1);
    expect(r.err).toBe("virtnetctl: network 'cli-net' is already active\n");

    r = await run(['autostart', 'cli-net']);
    expect(r).toMatchObject({ code: 0, out: 'Network cli-net marked as autostarted\n' });
    expect((await run(['info', 'cli-net', '--json'])).out).toContain('"autostart": true');
    r = await run(['autostart', 'cli-net', '--disable']);
    expect(r.code).toBe(0);

    engine.leaseTable.set('cli-net', [
      { mac: '52:54:00:01:02:03', ip: '10.79.0.11', hostname: 'g', expiry: 0 },
      { mac: '52:54:00:01:02:04', ip: '10.79.0.12', hostname: '', expiry: 0 },
    ]);
    // The hook records name the owner of the first MAC (upper case: matched case-insensitively); a
    // record of another network with the second MAC must not name it.
    const records = new FileRecordStore(hookPaths(join(configDir, 'run')).records);
    await records.put({
      version: 1,
      domain: 'vm-a',
      uuid: '6d8a5a0e-0000-4000-8000-000000000001',
      phase: 'started',
      ports: [
        {
          index: 0,
          kind: 'network',
          network: 'cli-net',
          mac: '52:54:00:01:02:03'.toUpperCase(),
          forwards: [],
        },
      ],
      updatedAt: '',
    });
    await records.put({
      version: 1,
      domain: 'vm-b',
      uuid: '6d8a5a0e-0000-4000-8000-000000000002',
      phase: 'started',
      ports: [{ index: 0, kind: 'bridge', network: 'other-net', mac: '52:54:00:01:02:04', forwards: [] }],
      updatedAt: '',
    });
    r = await run(['leases', 'cli-net']);
    expect(r.out).toBe(
      'MAC                IP          HOSTNAME  DOMAIN  EXPIRES\n' +
        '52:54:00:01:02:03  10.79.0.11  g         vm-a    never\n' +
        '52:54:00:01:02:04  10.79.0.12  -         -       never\n',
    );
    r = await run(['leases', 'cli-net', '--json']);
    expect(JSON.parse(r.out)).toEqual([
      { mac: '52:54:00:01:02:03', ip: '10.79.0.11', hostname: 'g', expiry: 0, domain: 'vm-a' },
      { mac: '52:54:00:01:02:04', ip: '10.79.0.12', hostname: '', expiry: 0 },
    ]);

    r = await run(['host-add', 'cli-net', '52:54:00:0a:0b:0c', '--ip', '10.79.0.40', '--hostname', 'db']);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(engine.calls).toContain('addHost cli-net 52:54:00:0a:0b:0c 10.79.0.40 db');
    r = await run(['host-add', 'cli-net', '52:54:00:0a:0b:0d', '--ip', '172.16.0.1']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/outside the network's IPv4 subnet/);
    r = await run(['host-remove', 'cli-net', '52:54:00:0a:0b:0c']);
    expect(r.code).toBe(0);

    r = await run([
      'update',
      'cli-net',
      'add',
      'ip-dhcp-host',
      "<host mac='52:54:00:0a:0b:0e' ip='10.79.0.41'/>",
    ]);
    expect(r, r.err).toMatchObject({ code: 0, out: 'Network cli-net updated (add ip-dhcp-host)\n' });
    expect((await run(['dumpxml', 'cli-net'])).out).toMatch(
      /<host mac=.52:54:00:0a:0b:0e. ip=.10\.79\.0\.41.\/>/,
    );
    r = await run(['update', 'cli-net', 'delete', 'ip-dhcp-host', 'h.xml'], {
      'h.xml': "<host mac='52:54:00:0a:0b:0e'/>",
    });
    expect(r, r.err).toMatchObject({ code: 0 });
    expect((await run(['dumpxml', 'cli-net'])).out).not.toContain('52:54:00:0a:0b:0e');
    r = await run(['update', 'cli-net', 'replace', 'ip-dhcp-host', '<host/>']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /COMMAND must be one of add, add-last, add-first, delete, modify \(got 'replace'\)/,
    );

    r = await run(['undefine', 'cli-net']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is active; stop it first/);
    expect((await run(['stop', 'cli-net'])).code).toBe(0);
    expect((await run(['undefine', 'cli-net'])).out).toBe('Network cli-net has been undefined\n');
  });

  it('doctor [NAME]: the findings of running networks, fix commands, exit 1 on a problem', async () => {
    expect(
      (
        await run(['define', 'd.xml'], {
          'd.xml': XML.replace('cli-net', 'doc-net').replace('vh7br9', 'vh7br8'),
        })
      ).code,
    ).toBe(0);
    expect((await run(['doctor'])).out).toBe('no running network\n');
    expect((await run(['start', 'doc-net'])).code).toBe(0);
    engine.doctorTable.set('doc-net', [
      {
        check: 'iptables',
        status: 'fixed',
        detail: 'iptables-nft: FORWARD (policy DROP) can drop',
        fix: '',
      },
      {
        check: 'ip_forward',
        status: 'problem',
        detail: 'net.ipv4.ip_forward is 0: nothing is forwarded',
        fix: 'sysctl -w net.ipv4.ip_forward=1',
      },
    ]);
    let r = await run(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toBe(
      'network doc-net:\n' +
        '  fixed   iptables   iptables-nft: FORWARD (policy DROP) can drop\n' +
        '  problem ip_forward net.ipv4.ip_forward is 0: nothing is forwarded\n' +
        '            fix: sysctl -w net.ipv4.ip_forward=1\n',
    );
    r = await run(['doctor', 'doc-net', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)[1]).toEqual({
      network: 'doc-net',
      check: 'ip_forward',
      status: 'problem',
      detail: 'net.ipv4.ip_forward is 0: nothing is forwarded',
      fix: 'sysctl -w net.ipv4.ip_forward=1',
    });
    engine.doctorTable.set('doc-net', [
      { check: 'dhcp', status: 'ok', detail: 'no other DHCP server', fix: '' },
    ]);
    expect((await run(['doctor', 'doc-net'])).code).toBe(0);
    r = await run(['doctor', 'nosuch']);
    expect(r.code).toBe(3);
    expect((await run(['stop', 'doc-net'])).code).toBe(0);
    r = await run(['doctor', 'doc-net']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is not active/);
    expect((await run(['undefine', 'doc-net'])).code).toBe(0);
  });

  it('monitor prints the events as they come (--count, --json)', async () => {
    const io = captureIo();
    io.env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address, VIRTNET_RUN_DIR: join(configDir, 'run') };
    const mon = main(['monitor', '--count', '4'], io);
    const ioJson = captureIo();
    ioJson.env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    const monJson = main(['monitor', 'mon-net', '--json', '--count', '1'], ioJson);
    // Wait until both are subscribed (they announce it on stderr once the match is in place).
    for (let i = 0; i < 100 && !(io.err && ioJson.err); i++) await new Promise((r) => setTimeout(r, 20));
    expect(io.err).toMatch(/^Monitoring all networks on unix:path=/);
    expect((await run(['define', 'm.xml'], { 'm.xml': XML.replace('cli-net', 'mon-net') })).code).toBe(0);
    expect((await run(['start', 'mon-net'])).code).toBe(0);
    expect(await mon).toBe(0);
    const lines = io.out
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\S+ /, ''));
    expect(lines).toEqual([
      'object mon-net added /org/virtnet/network1/network/mon_2dnet',
      'network mon-net defined',
      'network mon-net changed Active=true',
      'network mon-net started',
    ]);
    expect(await monJson).toBe(0);
    expect(JSON.parse(ioJson.out)).toMatchObject({ member: 'InterfacesAdded', network: 'mon-net' });
    await run(['stop', 'mon-net']);
    await run(['undefine', 'mon-net']);
  });

  it('exit codes: usage 2, not found 3, invalid XML 1 (one line per problem)', async () => {
    expect((await run(['start'])).code).toBe(2);
    expect((await run(['host-add', 'x', '52:54:00:00:00:01'])).code).toBe(2);
    const nf = await run(['info', 'nope']);
    expect(nf.code).toBe(3);
    expect(nf.err).toBe("virtnetctl: no network named 'nope' (defined: none)\n");
    const bad = await run(['define', 'b.xml'], { 'b.xml': '<network><name>x</name><oops/></network>' });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^virtnetctl: .*oops/);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
  });

  it('no daemon on the bus: one clear line', async () => {
    const other = await startPrivateBus();
    try {
      const io = captureIo();
      io.env = { DBUS_SYSTEM_BUS_ADDRESS: other.address };
      const code = await main(['list'], io);
      expect(code).toBe(3);
      expect(io.err).toMatch(
        /^virtnetctl: virtnetd is not running on unix:path=.* \(nobody owns org\.virtnet\.network1\); start virtnetd\.service\n$/,
      );
    } finally {
      await other.stop();
    }
  });

  it.skipIf(process.getuid?.() !== 0)('access denied is exit 4 (virtnetctl run as uid 65534)', async () => {
    await run(['define', 'net.xml'], { 'net.xml': XML });
    const r = await execOut(
      [
        ...NOBODY,
        'node',
        '--import',
        join(projectRoot, 'test/helpers/ts-register.mjs'),
        join(projectRoot, 'src/bin/virtnetctl.ts'),
        'start',
        'cli-net',
      ],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address }, timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(
      /^virtnetctl: Start needs org\.virtnet\.network1\.manage-networks: uid 65534 is not root/,
    );
    await run(['undefine', 'cli-net']);
  });
});
