/**
 * `npm run demo`: virtnet end to end on the embedded default network, in a sandbox.
 *
 * Everything happens in network namespaces and on a private system-type bus this program creates: the
 * host's own links, routes and firewall are never touched, and no packet leaves the sandbox.
 *
 *   "internet" netns  203.0.113.1  (a TCP server that answers with the address it sees)
 *        |  veth
 *   "host" netns      uplink0 203.0.113.2, default route → 203.0.113.1
 *        |            virtnetd (on the private bus) runs the `default` NAT network: virbr0
 *        |            192.168.122.1/24, dnsmasq (DHCP .2–.254, DNS), firewall rules
 *   vnet0 (a veth playing the VM's tap; virtnet's qemu hook attaches it to virbr0)
 *        |
 *   "guest" netns     eth0, DHCP with busybox udhcpc, resolves names through dnsmasq
 *
 * The VM's life is played through the real hook program (hooks/qemu) with a domain XML on stdin, as
 * libvirt would call it. With --check the demo exits after its checks (0 = all passed); otherwise it
 * keeps the sandbox up for you to explore and removes everything on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../src/util/package.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, run } from '../helpers/netns.js';
import { type PrivateBus, startPrivateBus } from '../helpers/private-bus.js';

const BUS_NAME = 'org.virtnet.network1';
const NET_PATH = '/org/virtnet/network1/network/default';
const NET_IFACE = 'org.virtnet.network1.Network';
const GUEST_MAC = '52:54:00:de:00:01';
const GUEST_IP = '192.168.122.10';
const INET_IP = '203.0.113.1';
const UPLINK_IP = '203.0.113.2';

const HELP = `Usage: npm run demo [-- --check] [-- --firewall nftables|iptables]

Runs virtnet on its embedded default NAT network (virbr0, 192.168.122.1/24, DHCP .2-.254) inside a
sandbox of network namespaces and a private bus, plugs a simulated VM into it through virtnet's libvirt
hook, and shows it get a lease, resolve a name through dnsmasq, reach an "internet" namespace through
NAT and be reached through a port forward. Needs root and the packages of packaging/install-deps.sh.

  --check              exit after the checks (status 0 when all passed) instead of waiting for Ctrl-C
  --firewall BACKEND   auto (default), nftables or iptables
  -h, --help           this help
`;

const color = process.stdout.isTTY
  ? (c: number, s: string) => `\x1b[${c}m${s}\x1b[0m`
  : (_: number, s: string) => s;
const bold = (s: string) => color(1, s);
const green = (s: string) => color(32, s);
const red = (s: string) => color(31, s);
const dim = (s: string) => color(2, s);

interface Sandbox {
  host?: Netns;
  guest?: Netns;
  inet?: Netns;
  bus?: PrivateBus;
  daemon?: ReturnType<typeof spawn>;
  dir?: string;
}

let failures = 0;
let stepNo = 0;
/** Check results of the running step, printed after its status. */
const pending: string[] = [];
const TOTAL = 9;

async function step<T>(title: string, fn: () => Promise<T>, show?: (v: T) => string): Promise<T> {
  stepNo += 1;
  process.stdout.write(`${bold(`[${stepNo}/${TOTAL}]`)} ${title} … `);
  const t0 = performance.now();
  try {
    const v = await fn();
    const ms = Math.round(performance.now() - t0);
    process.stdout.write(`${green('ok')} ${dim(`(${ms} ms)`)}${show ? `\n      ${show(v)}` : ''}\n`);
    return v;
  } catch (e) {
    process.stdout.write(`${red('FAILED')}\n      ${(e as Error).message.split('\n').join('\n      ')}\n`);
    throw e;
  } finally {
    for (const line of pending.splice(0)) console.log(line);
  }
}

function check(what: string, ok: boolean, detail: string): void {
  if (!ok) failures += 1;
  pending.push(`      ${ok ? green('✓') : red('✗')} ${what}: ${detail}`);
}

function whichSync(tool: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function missingTools(): string[] {
  const missing = ['ip', 'dnsmasq', 'dbus-daemon', 'dbus-send', 'busctl', 'busybox'].filter(
    (t) => !whichSync(t),
  );
  if (!whichSync('nft') && !whichSync('iptables-restore')) missing.push('nft or iptables-restore');
  return missing;
}

function busctl(
  bus: PrivateBus,
  args: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return run(['busctl', `--address=${bus.address}`, ...args], { allowFail: true });
}

/** A tiny TCP server in a namespace that answers each connection with `reply(remoteAddress)`. */
function tcpServer(ns: Netns, port: number, reply: string): void {
  const js = `require('net').createServer(s=>{const a=s.remoteAddress.replace(/^::ffff:/,'');s.end(${reply}+'\\n')}).listen(${port})`;
  ns.spawn(['node', '-e', js]);
}

async function tcpFetch(ns: Netns, host: string, port: number): Promise<string> {
  const js = `const s=require('net').connect(${port},${JSON.stringify(host)});let d='';s.on('data',c=>d+=c);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.error(e.message);process.exit(1)});setTimeout(()=>{console.error('timeout');process.exit(1)},5000)`;
  const r = await ns.exec(['node', '-e', js], { allowFail: true, timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`connect ${host}:${port} from ${ns.name} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function domainXml(): string {
  return `<domain type='qemu'>
  <name>demo-vm</name>
  <uuid>6d8d3a39-5a36-4c1c-9b1e-2f0c4a5b6c7d</uuid>
  <metadata>
    <virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1">
      <virtnet:interface mac="${GUEST_MAC}" network="default" ip="${GUEST_IP}" name="demo-vm">
        <virtnet:forward proto="tcp" host-port="8080" guest-port="80"/>
      </virtnet:interface>
    </virtnet:domain>
  </metadata>
  <devices>
    <interface type='ethernet'>
      <mac address='${GUEST_MAC}'/>
      <target dev='vnet0' managed='no'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;
}

/** Run virtnet's qemu hook as libvirt does: `qemu demo-vm OP SUBOP -` with the domain XML on stdin. */
async function hook(bus: PrivateBus, op: string, subop: string): Promise<string> {
  const r = await run([join(packageRoot(), 'hooks', 'qemu'), 'demo-vm', op, subop, '-'], {
    input: domainXml(),
    allowFail: true,
    env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
  });
  if (r.exitCode !== 0)
    throw new Error(`hooks/qemu demo-vm ${op} ${subop} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stderr.trim();
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function teardown(sb: Sandbox): Promise<void> {
  console.log(`\n${bold('Cleaning up')} …`);
  if (sb.bus && sb.daemon && sb.daemon.exitCode === null) {
    // Play libvirt stopping the VM, then stop the network explicitly (SIGTERM alone leaves it up).
    await hook(sb.bus, 'stopped', 'end').catch(() => '');
    await hook(sb.bus, 'release', 'end').catch(() => '');
    await busctl(sb.bus, ['call', BUS_NAME, NET_PATH, NET_IFACE, 'Stop']);
    const gone = new Promise((r) => sb.daemon!.once('exit', r));
    sb.daemon.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (sb.daemon.exitCode === null) sb.daemon.kill('SIGKILL');
  }
  await sb.bus?.stop().catch(() => undefined);
  cleanupAllNetns();
  if (sb.dir) rmSync(sb.dir, { recursive: true, force: true });
  console.log(`${green('done')}: namespaces, bus, daemon, dnsmasq and temporary files removed.`);
}

async function main(): Promise<number> {
  let args: ReturnType<
    typeof parseArgs<{
      options: {
        check: { type: 'boolean' };
        firewall: { type: 'string' };
        help: { type: 'boolean'; short: 'h' };
      };
    }>
  >;
  try {
    args = parseArgs({
      options: {
        check: { type: 'boolean' },
        firewall: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    console.error(`demo: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.values.help) {
    console.log(HELP);
    return 0;
  }
  const firewall = args.values.firewall ?? 'auto';
  if (!['auto', 'nftables', 'iptables'].includes(firewall)) {
    console.error(`demo: --firewall must be auto, nftables or iptables (got '${firewall}')`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error('demo: needs root (it creates network namespaces): run it as root, e.g. sudo npm run demo');
    return 1;
  }
  const missing = missingTools();
  if (missing.length) {
    console.error(
      `demo: missing tools: ${missing.join(', ')}. Install them with: sudo packaging/install-deps.sh`,
    );
    return 1;
  }

  const root = packageRoot();
  const sb: Sandbox = {};
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    void teardown(sb).then(() => process.exit(failures ? 1 : 0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  console.log(bold('virtnet demo: the default NAT network in a sandbox\n'));
  try {
    await step(
      'Creating the sandbox (namespaces host, guest, internet; a private system bus)',
      async () => {
        sb.dir = mkdtempSync(join(tmpdir(), 'virtnet-demo-'));
        chmodSync(sb.dir, 0o755); // dnsmasq drops to nobody and must read its files under the run dir
        sb.host = await createNetns('vn-demo-host-');
        sb.guest = await createNetns('vn-demo-guest-');
        sb.inet = await createNetns('vn-demo-inet-');
        await link(sb.host, 'uplink0', sb.inet, 'eth0');
        await sb.host.addAddr('uplink0', `${UPLINK_IP}/24`);
        await sb.inet.addAddr('eth0', `${INET_IP}/24`);
        await sb.host.addRoute('default', { via: INET_IP });
        tcpServer(sb.inet, 80, `'hello from the internet, you are '+a`);
        sb.bus = await startPrivateBus({ tempPrefix: 'virtnet-demo-bus-' });
        return `netns ${sb.host.name}, ${sb.guest.name}, ${sb.inet.name}; bus ${sb.bus.address}`;
      },
      (s) => s,
    );

    const dirs = {
      config: join(sb.dir!, 'networks'),
      state: join(sb.dir!, 'state'),
      run: join(sb.dir!, 'run'),
    };
    await step(
      'Starting virtnetd in the host namespace with the embedded default network (autostart)',
      async () => {
        mkdirSync(join(dirs.config, 'autostart'), { recursive: true });
        writeFileSync(join(dirs.config, 'default.xml'), readFileSync(join(root, 'packaging', 'default.xml')));
        symlinkSync('../default.xml', join(dirs.config, 'autostart', 'default.xml'));
        const entry = join(root, 'dist', 'src', 'bin', 'virtnetd.js');
        sb.daemon = spawn(
          'ip',
          [
            'netns',
            'exec',
            sb.host!.name,
            process.execPath,
            '--max-semi-space-size=1',
            '--expose-gc',
            entry,
            '--bus',
            sb.bus!.address,
            '--config-dir',
            dirs.config,
            '--state-dir',
            dirs.state,
            '--run-dir',
            dirs.run,
            '--firewall',
            firewall,
            '--log-level',
            'info',
            // The demo's network lives in its own namespaces: never published into the host's libvirt.
            '--libvirt',
            'none',
          ],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
            env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sb.bus!.address },
          },
        );
        let log = '';
        sb.daemon.stderr!.on('data', (d) => {
          log += String(d);
        });
        await waitFor('virtnetd to own org.virtnet.network1 and start default', async () => {
          if (sb.daemon!.exitCode !== null)
            throw new Error(`virtnetd exited (${sb.daemon!.exitCode}):\n${log}`);
          const r = await busctl(sb.bus!, ['get-property', BUS_NAME, NET_PATH, NET_IFACE, 'Active']);
          return r.stdout.trim() === 'b true';
        });
        const fw = await busctl(sb.bus!, ['get-property', BUS_NAME, NET_PATH, NET_IFACE, 'Bridge']);
        return `network default active on bridge ${fw.stdout.trim().replace(/^s /, '')}`;
      },
      (s) => s,
    );

    await step(
      "Plugging in a VM: libvirt's qemu hook (prepare, start, started) with the domain XML",
      async () => {
        // The VM's NIC: a veth whose host end is named like libvirt's tap (vnet0).
        await link(sb.host!, 'vnet0', sb.guest!, 'eth0', { macB: GUEST_MAC });
        for (const [op, sub] of [
          ['prepare', 'begin'],
          ['start', 'begin'],
          ['started', 'begin'],
        ] as const) {
          await hook(sb.bus!, op, sub);
        }
        const master = await run(['ip', '-n', sb.host!.name, '-o', 'link', 'show', 'vnet0']);
        const m = /master (\S+)/.exec(master.stdout);
        check('tap attached', m?.[1] === 'virbr0', `vnet0 master ${m?.[1] ?? '(none)'}`);
      },
    );

    const lease = await step(
      'The guest asks for an address (busybox udhcpc in the guest namespace)',
      async () => {
        const l = await guestDhcp(sb.guest!, 'eth0', { hostname: 'demo-vm' });
        check(
          'reserved address from the metadata',
          l.ip === GUEST_IP,
          `${l.ip} (router ${l.router}, dns ${l.dns.join(' ')})`,
        );
        return l;
      },
    );

    await step('Leases over the bus: GetLeases', async () => {
      const r = await busctl(sb.bus!, ['--json=short', 'call', BUS_NAME, NET_PATH, NET_IFACE, 'GetLeases']);
      const seen = r.stdout.includes(lease.ip);
      check('GetLeases lists the guest', seen, r.stdout.trim() || r.stderr.trim());
    });

    await step('Name resolution through dnsmasq (nslookup -type=a demo-vm 192.168.122.1)', async () => {
      const r = await sb.guest!.exec(['busybox', 'nslookup', '-type=a', 'demo-vm', '192.168.122.1'], {
        allowFail: true,
      });
      check(
        'demo-vm resolves',
        r.exitCode === 0 && r.stdout.includes(GUEST_IP),
        r.stdout.trim().split('\n').slice(-1)[0] ?? r.stderr.trim(),
      );
    });

    await step(`The guest reaches the "internet" (${INET_IP}) through NAT`, async () => {
      const reply = await tcpFetch(sb.guest!, INET_IP, 80);
      check('masqueraded behind the host uplink address', reply.endsWith(UPLINK_IP), reply);
    });

    await step('A port forward from the metadata: internet → host:8080 → demo-vm:80', async () => {
      tcpServer(sb.guest!, 80, `'hello from demo-vm, you are '+a`);
      await new Promise((r) => setTimeout(r, 300));
      const reply = await tcpFetch(sb.inet!, UPLINK_IP, 8080);
      check('inbound forward reaches the guest', reply.startsWith('hello from demo-vm'), reply);
    });

    await step(
      "Firewall rules installed (one transaction per network, in virtnet's own tables/chains)",
      async () => {
        const nft = await sb.host!.exec(['nft', 'list', 'ruleset'], { allowFail: true });
        const ipt = await sb.host!.exec(['iptables-save'], { allowFail: true });
        const text = nft.stdout.includes('virtnet') ? nft.stdout : ipt.stdout;
        pending.push(
          ...text
            .trim()
            .split('\n')
            .map((l) => `        ${dim(l)}`),
        );
      },
    );
  } catch {
    failures += 1;
  }

  const addr = sb.bus?.address ?? '';
  if (!args.values.check) {
    console.log(`
${failures ? red('Some checks failed; the sandbox stays up for inspection.') : ''}
${bold('The sandbox is up. Try, in another terminal (as root):')}
  busctl --address=${addr} tree ${BUS_NAME}
  busctl --address=${addr} call ${BUS_NAME} /org/virtnet/network1 org.virtnet.network1.Manager ListNetworks
  busctl --address=${addr} introspect ${BUS_NAME} ${NET_PATH}
  busctl --address=${addr} get-property ${BUS_NAME} ${NET_PATH} ${NET_IFACE} Active Bridge ForwardMode
  busctl --address=${addr} call ${BUS_NAME} ${NET_PATH} ${NET_IFACE} GetLeases
  busctl --address=${addr} monitor ${BUS_NAME}
  DBUS_SYSTEM_BUS_ADDRESS=${addr} node ${join(root, 'dist/src/bin/virtnetctl.js')} list
  DBUS_SYSTEM_BUS_ADDRESS=${addr} node ${join(root, 'dist/src/bin/virtnetctl.js')} leases default
  DBUS_SYSTEM_BUS_ADDRESS=${addr} node ${join(root, 'dist/src/bin/virtnetctl.js')} host-add default 52:54:00:de:00:02 192.168.122.20 other-vm
  ip netns exec ${sb.guest?.name} busybox ping -c 3 ${INET_IP}
  ip netns exec ${sb.host?.name} nft list ruleset

${bold('Press Ctrl-C to remove everything.')}`);
    await new Promise<void>(() => undefined); // until a signal handler tears down and exits
  }
  stopping = true;
  await teardown(sb);
  console.log(failures ? red(`\n${failures} check(s) failed.`) : green('\nAll checks passed.'));
  return failures ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`demo: ${(e as Error).stack ?? e}`);
    cleanupAllNetns();
    process.exit(1);
  },
);
