/**
 * Hostile bus calls and file safety against the real virtnetd (real engine in a vh9- netns, private
 * system bus with virtnet's shipped policy):
 * - ~1,500 generated calls as root (the caller that CAN change things): DefineNetwork with hostile
 *   names/bridges/addresses (newlines, NULs are refused by D-Bus itself, shell and dnsmasq
 *   metacharacters, '../../etc/passwd'), GetNetworkByName, AddHost/RemoveHost with hostile MAC/IP/
 *   hostname, HookEvent with hostile arguments and XML, wrong signatures, huge strings. Each call is
 *   answered (a reply, or a named error with a non-empty, bounded text); the daemon still answers;
 *   no file outside virtnet's dirs is touched (a sentinel tree and /etc/passwd unchanged; the config
 *   and run dirs hold only expected names); no config line or rule carries a hostile marker (dnsmasq
 *   conf/hostsfile/addn-hosts, nft ruleset); with strace present, the daemon never execs a shell.
 * - NUL in a string never reaches the daemon (the client library refuses it: D-Bus strings cannot
 *   hold NUL); a lone surrogate arrives as U+FFFD and is an InvalidArgument;
 * - file modes after a real start: config XML 0644, nothing world-writable under the state/run dirs,
 *   no secrets (no key/password material) in them; dnsmasq runs with a non-zero uid after binding.
 * Unprivileged callers: test/integration/daemon-errors.test.ts already tries every mutating method as
 * `setpriv --reuid=65534` (AccessDenied, nothing changed) and checks the list covers the whole API.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, Message, type MessageBus, MessageType, Variant } from '../../src/bus/dbus.js';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { treeHash } from '../helpers/tree.js';
import { domainXml, meta } from '../hooks/fakes.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dnsmasq', 'nft']);
// Under CI strace must be there (packaging/install-deps.sh installs it): the runtime check may not skip.
const haveStrace = existsSync('/usr/bin/strace');
if (!haveStrace && process.env.CI === 'true')
  throw new Error('CI=true and strace is missing (run packaging/install-deps.sh)');

const NET = 'vh9-sec';
const BRIDGE = 'vh9br0';
const NET_PATH = `${MANAGER_PATH}/network/vh9_2dsec`;
const XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.89.0.1' prefix='24'><dhcp><range start='10.89.0.10' end='10.89.0.20'/></dhcp></ip>
</network>`;

/** Hostile values: each carries a marker that must never appear in a config line or a rule. */
const MARK = 'PWN9';
const HOSTILE = [
  `a\n${MARK}=1`,
  `x\r\ndhcp-script=/tmp/${MARK}`,
  `comma,${MARK}`,
  `eq=${MARK}`,
  `hash#${MARK}`,
  `quote"${MARK}`,
  `apos'${MARK}`,
  `$(touch /tmp/${MARK})`,
  `\`touch /tmp/${MARK}\``,
  `; rm -rf / #${MARK}`,
  `| nc ${MARK} 1`,
  `../../etc/passwd${MARK}`,
  '../../etc/passwd',
  '/etc/passwd',
  `..${MARK}`,
  `.${MARK}`,
  `${MARK}/../../x`,
  `conf-file=/etc/${MARK}`,
  `addn-hosts=/etc/${MARK}`,
  `${MARK}\u2028x`,
  `${MARK}\tx`,
  `${MARK} x`,
  `${MARK}%d%s%n`,
  `${MARK}é`,
  `<${MARK}/>`,
  `]]>${MARK}`,
  `&${MARK};`,
  `${MARK}`.repeat(3000),
];
const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\n', ',', '=', '#', '"', '\\', ' ', '/'))
      .map(([a, c]) => `${a}${c}${MARK}`),
  },
);
const esc = (v: string) =>
  v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

interface Call {
  path: string;
  iface: string;
  member: string;
  signature: string;
  body: unknown[];
}

function hostileCalls(n: number): Call[] {
  const m = (member: string, signature: string, body: unknown[]): Call => ({
    path: MANAGER_PATH,
    iface: MANAGER_IFACE,
    member,
    signature,
    body,
  });
  const nw = (member: string, signature: string, body: unknown[], path = NET_PATH): Call => ({
    path,
    iface: NETWORK_IFACE,
    member,
    signature,
    body,
  });
  const call = fc.oneof(
    // DefineNetwork: one hostile field in an otherwise valid network (escaped or raw).
    fc
      .tuple(
        fc.constantFrom('name', 'bridge', 'domain', 'host', 'mac', 'ip', 'range', 'forward'),
        hostile,
        fc.boolean(),
      )
      .map(([field, v, raw]) => {
        const x = raw ? v : esc(v);
        const f = (k: string, good: string) => (k === field ? x : good);
        const xml = `<network><name>${f('name', 'vh9-evil')}</name><forward mode='${f('forward', 'nat')}'/><bridge name='${f('bridge', 'vh9br7')}'/><domain name='${f('domain', 'example')}'/><ip address='${f('ip', '10.97.0.1')}' prefix='24'><dhcp><range start='${f('range', '10.97.0.10')}' end='10.97.0.20'/><host mac='${f('mac', '52:54:00:00:00:09')}' name='${f('host', 'h9')}' ip='10.97.0.9'/></dhcp></ip></network>`;
        return m('DefineNetwork', 's', [xml]);
      }),
    hostile.map((v) => m('GetNetworkByName', 's', [v])),
    fc.tuple(hostile, fc.constantFrom(0, 1, 2), fc.nat(20)).map(([v, which, i]) => {
      const args = [`52:54:00:09:00:${(i + 16).toString(16)}`, `10.89.0.${100 + i}`, `h${i}`];
      args[which] = v;
      return nw('AddHost', 'sss', args);
    }),
    hostile.map((v) => nw('RemoveHost', 's', [v])),
    fc.tuple(hostile, fc.nat(4)).map(([v, i]) => {
      const args = ['vm9', 'start', 'begin', '-', ''];
      if (i === 4)
        args[4] = domainXml({
          name: 'vm9',
          uuid: '00000000-0000-4000-8000-000000000099',
          mac: '52:54:00:09:09:09',
          bridge: BRIDGE,
          tap: 'vnet9',
          metadata: meta(`<virtnet:interface mac='52:54:00:09:09:09' ip='${esc(v)}' name='${esc(v)}'/>`),
        });
      else {
        args[i] = v;
        args[4] = '<domain><name>vm9</name></domain>';
      }
      return m('HookEvent', 'sssss', args);
    }),
    // Wrong signatures and arity.
    fc.constantFrom(
      m('DefineNetwork', 'i', [7]),
      m('DefineNetwork', 'ss', ['a', 'b']),
      m('GetNetworkByName', 'as', [['a']]),
      m('HookEvent', 's', ['vm']),
      nw('AddHost', 'ss', ['52:54:00:00:00:01', '10.89.0.5']),
      nw('AddHost', 'sss' + 'u', ['52:54:00:00:00:01', '10.89.0.5', 'h', 1]),
      nw('SetAutostart', 's', ['true']),
      nw('RemoveHost', 'b', [true]),
      nw('Start', 's', ['now']),
      {
        path: NET_PATH,
        iface: 'org.freedesktop.DBus.Properties',
        member: 'Set',
        signature: 'ssv',
        body: [NETWORK_IFACE, 'Name', ['s', 'x']],
      },
    ),
    // Object paths named after traversal attempts (valid D-Bus paths) and hostile interfaces.
    fc
      .constantFrom('_2e_2e_2f_2e_2e_2fetc_2fpasswd', 'etc', '_2e_2e', 'x_0a', 'vh9_2dsec_2fx')
      .map((p) => nw('Stop', '', [], `${MANAGER_PATH}/network/${p}`)),
  );
  return fc.sample(call, { numRuns: n }).map((c) => {
    // dbus-next wants Variants for 'v'.
    if (c.signature === 'ssv') return { ...c, body: [c.body[0], c.body[1], new Variant('s', 'x')] };
    return c;
  });
}

/** Names a call may fail with: each one says what was wrong. */
const CLEAR_ERRORS = new Set([
  'org.virtnet.network1.Error.InvalidArgument',
  'org.virtnet.network1.Error.NotFound',
  'org.virtnet.network1.Error.Conflict',
  'org.virtnet.network1.Error.Failed',
  'org.freedesktop.DBus.Error.InvalidArgs',
  'org.freedesktop.DBus.Error.UnknownMethod',
  'org.freedesktop.DBus.Error.UnknownObject',
  'org.freedesktop.DBus.Error.PropertyReadOnly',
]);

function allFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      out.push(p);
      if (n.isDirectory()) walk(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

describe.skipIf(skip)('virtnetd under hostile bus calls; file modes; dnsmasq not root', () => {
  let bus: PrivateBus;
  let host: Netns;
  let daemon: VirtnetdProcess;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let sentinel: string;
  let strace: ReturnType<typeof spawn> | undefined;
  let straceOut: string;

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh9-s');
    base = mkdtempSync(join(tmpdir(), 'vh9-sec-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    // A sentinel tree next to virtnet's dirs: '../' in a name would land here first.
    sentinel = join(base, 'sentinel');
    mkdirSync(join(sentinel, 'etc'), { recursive: true });
    writeFileSync(join(sentinel, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'warning' });
    if (haveStrace) {
      straceOut = join(base, 'strace.out');
      strace = spawn(
        'strace',
        ['-f', '-qq', '-e', 'trace=execve', '-o', straceOut, '-p', String(daemon.pid)],
        {
          stdio: 'ignore',
        },
      );
      await new Promise((r) => setTimeout(r, 500));
    }
    const d = await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', XML]);
    expect(d.code, d.stderr).toBe(0);
    const s = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(s.code, `${s.stderr}\n${daemon.output()}`).toBe(0);
  }, 120_000);

  afterAll(async () => {
    strace?.kill('SIGINT');
    await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop']).catch(() => {});
    await daemon?.stop('SIGTERM');
    cleanupAllNetns();
    await bus?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('files virtnet wrote have safe modes and hold no secrets; dnsmasq runs without root', async () => {
    const xml = join(dirs.configDir, `${NET}.xml`);
    expect(statSync(xml).mode & 0o777).toBe(0o644);
    const written = [...allFiles(dirs.configDir), ...allFiles(dirs.stateDir), ...allFiles(dirs.runDir)];
    expect(written.length).toBeGreaterThan(3);
    for (const f of written) {
      const st = statSync(f);
      expect(st.mode & 0o002, `${f} is world-writable (${(st.mode & 0o777).toString(8)})`).toBe(0);
      // Root's, except what dnsmasq itself writes after dropping to nobody (its pid and lease files).
      if (st.uid !== 0) expect(f.startsWith(join(dirs.runDir, 'dnsmasq')) && st.uid === 65534, f).toBe(true);
      if (st.isFile())
        expect(readFileSync(f, 'utf8'), f).not.toMatch(
          /PRIVATE KEY|password\s*[=:]|secret\s*[=:]|token\s*[=:]/i,
        );
    }
    const pidFile = allFiles(join(dirs.runDir, 'dnsmasq')).find((f) => f.endsWith('.pid'));
    expect(pidFile, allFiles(dirs.runDir).join('\n')).toBeDefined();
    const pid = Number(readFileSync(pidFile!, 'utf8').trim());
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('dnsmasq');
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status)!.slice(1).map(Number);
    expect(uids, 'dnsmasq real/effective/saved/fs uid').not.toContain(0);
    const caps = /^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]!;
    // After binding it keeps only what it needs (NET_ADMIN/NET_RAW/NET_BIND_SERVICE), never all.
    expect(BigInt(`0x${caps}`) & (1n << 21n), 'CAP_SYS_ADMIN').toBe(0n);
  });

  it('~1,500 hostile calls: each answered clearly, daemon alive, nothing outside its dirs, nothing injected', async () => {
    const passwd = createHash('sha256').update(readFileSync('/etc/passwd')).digest('hex');
    const sentinelBefore = treeHash(sentinel);
    const calls = hostileCalls(1500);
    const conns: MessageBus[] = await Promise.all([0, 1, 2, 3].map(() => connectBus(bus.address)));
    const outcomes = { ok: 0, errors: new Map<string, number>() };
    const unclear: string[] = [];
    let sent = 0;
    try {
      // Four clients, each sending its share in order.
      await Promise.all(
        conns.map(async (conn, k) => {
          for (let i = k; i < calls.length; i += conns.length) {
            const c = calls[i]!;
            sent++;
            try {
              await conn.call(
                new Message({
                  type: MessageType.METHOD_CALL,
                  destination: BUS_NAME,
                  path: c.path,
                  interface: c.iface,
                  member: c.member,
                  signature: c.signature,
                  body: c.body,
                }),
              );
              outcomes.ok++;
              // A hostile network that happened to be valid was defined: remove it again.
              if (c.member === 'DefineNetwork') {
                /* undefined below, by listing */
              }
            } catch (e) {
              const err = e as { type?: string; text?: string; message?: string };
              const name = err.type ?? `client:${err.message}`;
              outcomes.errors.set(name, (outcomes.errors.get(name) ?? 0) + 1);
              const text = err.text ?? '';
              if (!CLEAR_ERRORS.has(name) || !text || text.length > 8000)
                unclear.push(
                  `${c.member}(${JSON.stringify(c.body).slice(0, 200)}) → ${name}: ${text.slice(0, 200)}`,
                );
            }
          }
        }),
      );
    } finally {
      for (const c of conns) c.disconnect();
    }
    console.log(
      `HOSTILE-BUS SUMMARY: calls=${sent} replies=${outcomes.ok} errors=${JSON.stringify(Object.fromEntries(outcomes.errors))} unclear=${unclear.length} daemonAlive=${!daemon.exited()}`,
    );
    expect(unclear.slice(0, 10)).toEqual([]);
    expect(sent).toBe(1500);
    expect(daemon.exited(), daemon.output()).toBe(false);
    const v = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(v.stdout.trim()).toBe('b true');

    // Nothing outside virtnet's dirs.
    expect(treeHash(sentinel)).toBe(sentinelBefore);
    expect(createHash('sha256').update(readFileSync('/etc/passwd')).digest('hex')).toBe(passwd);
    expect(readdirSync('/tmp').filter((f) => f.includes(MARK))).toEqual([]);
    expect(readdirSync(base).sort()).toEqual(
      ['networks', 'run', 'sentinel', 'state', ...(haveStrace ? ['strace.out'] : [])].sort(),
    );
    // The run and state dirs hold only the one active network's files (names from its valid name).
    for (const f of [...allFiles(dirs.runDir), ...allFiles(dirs.stateDir)]) {
      const rel = f.slice(base.length + 1);
      expect(rel.includes(MARK) || /[\u0000-\u001f]/.test(rel), `file ${JSON.stringify(rel)}`).toBe(false);
    }
    // No config line or rule carries a marker.
    for (const f of allFiles(join(dirs.runDir, 'dnsmasq')).filter((p) => statSync(p).isFile())) {
      expect(readFileSync(f, 'utf8').includes(MARK), `marker in ${f}`).toBe(false);
    }
    const rules = await host.exec(['nft', 'list', 'ruleset']);
    expect(rules.stdout.includes(MARK)).toBe(false);
    const ipt = await host.exec(['iptables-save'], { allowFail: true });
    expect(ipt.stdout.includes(MARK)).toBe(false);

    // Hostile values that are valid libvirt names (libvirt only refuses '/' and newlines) may have
    // defined networks: each is a plain file in the config dir, listed by the daemon, never active;
    // undefining them leaves exactly the original file.
    const list = await execOut([
      'busctl',
      `--address=${bus.address}`,
      '--json=short',
      'call',
      BUS_NAME,
      MANAGER_PATH,
      MANAGER_IFACE,
      'ListNetworks',
    ]);
    const paths = (JSON.parse(list.stdout) as { data: string[][] }).data[0]!;
    const defined = readdirSync(dirs.configDir).filter((f) => f.endsWith('.xml'));
    expect(defined.length).toBe(paths.length);
    for (const p of paths) {
      if (p === NET_PATH) continue;
      const u = await busctl(bus, ['call', BUS_NAME, p, NETWORK_IFACE, 'Undefine']);
      expect(u.code, u.stderr).toBe(0);
    }
    expect(readdirSync(dirs.configDir).filter((f) => f !== 'autostart')).toEqual([`${NET}.xml`]);
    expect(readFileSync(join(dirs.configDir, `${NET}.xml`), 'utf8').includes(MARK)).toBe(false);
  }, 300_000);

  it('NUL and a lone surrogate in bus strings: refused before the daemon (D-Bus strings cannot hold NUL) or a named error; the daemon unaffected', async () => {
    const outcomes: string[] = [];
    for (const [member, path, iface, sig, body] of [
      ['GetNetworkByName', MANAGER_PATH, MANAGER_IFACE, 's', [`a\u0000${MARK}`]],
      ['DefineNetwork', MANAGER_PATH, MANAGER_IFACE, 's', [`<network><name>x\u0000${MARK}</name></network>`]],
      ['AddHost', NET_PATH, NETWORK_IFACE, 'sss', ['52:54:00:09:00:01', '10.89.0.9', `h\u0000${MARK}`]],
      ['RemoveHost', NET_PATH, NETWORK_IFACE, 's', ['\ud800']],
    ] as const) {
      const conn = await connectBus(bus.address);
      const r = await Promise.race([
        conn
          .call(
            new Message({
              type: MessageType.METHOD_CALL,
              destination: BUS_NAME,
              path,
              interface: iface,
              member,
              signature: sig,
              body: [...body],
            }),
          )
          .then(
            () => 'reply',
            (e: { type?: string; message?: string }) => `error ${e.type ?? e.message}`,
          ),
        new Promise<string>((res) => setTimeout(() => res('no answer (connection dropped)'), 3000)),
      ]);
      outcomes.push(`${member}: ${r}`);
      try {
        conn.disconnect();
      } catch {}
      // Whatever happened to that client, the daemon is up, answers, and nothing changed.
      expect(daemon.exited(), daemon.output()).toBe(false);
      const v = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
      expect(v.stdout.trim(), member).toBe('b true');
    }
    console.log(`NUL / invalid UTF-8: ${outcomes.join('; ')}`);
    for (const o of outcomes) expect(o).not.toMatch(/: reply$/);
    for (const f of [...allFiles(dirs.configDir), ...allFiles(dirs.runDir)].filter((p) =>
      statSync(p).isFile(),
    ))
      expect(readFileSync(f, 'utf8').includes(MARK), f).toBe(false);
  });

  it.skipIf(!haveStrace)('the daemon never executed a shell (strace -f -e execve)', async () => {
    strace?.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 500));
    const lines = readFileSync(straceOut, 'utf8')
      .split('\n')
      .filter((l) => l.includes('execve('));
    const progs = lines.map((l) => /execve\("([^"]+)"/.exec(l)?.[1] ?? '?');
    console.log(`daemon execve: ${lines.length} calls: ${[...new Set(progs)].join(' ')}`);
    expect(lines.length).toBeGreaterThan(0); // it did run commands (dnsmasq HUPs are signals; nft runs)
    expect(progs.filter((p) => /(^|\/)(sh|bash|dash|zsh|busybox)$/.test(p))).toEqual([]);
  });
});
