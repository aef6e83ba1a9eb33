/**
 * Authorization through the real polkitd: polkitd runs on the private system bus in a mount namespace
 * of its own where virtnet's shipped action file (dbus/org.virtnet.network1.policy) is the only one in
 * /usr/share/polkit-1/actions and /etc/polkit-1/rules.d holds one test rule: "nobody" may
 * org.virtnet.network1.manage-networks. The host's polkit files are untouched (bind mounts exist only in
 * that namespace). Then: uid 65534 may change things, uid 1 "daemon" (no rule; the action's default is
 * auth_admin and there is no agent) is refused with AccessDenied, root never asks polkit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  execOut,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  nameHasOwner,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const POLKITD = '/usr/lib/polkit-1/polkitd';
const skip = missingPrereqs(['ip', 'dbus-daemon', 'dbus-send', 'setpriv', 'unshare', 'nft', POLKITD]);

const NET = 'vh7-pk';
const NET_PATH = `${MANAGER_PATH}/network/vh7_2dpk`;
const XML = `<network><name>${NET}</name><bridge name='vh7br7'/><ip address='10.87.0.1' prefix='24'/></network>`;

async function dsendAs(
  bus: PrivateBus,
  uid: number | undefined,
  path: string,
  member: string,
  args: string[],
) {
  const argv = [
    'dbus-send',
    `--bus=${bus.address}`,
    '--print-reply',
    `--dest=${BUS_NAME}`,
    path,
    member,
    ...args,
  ];
  const prefix = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const r = await execOut([...prefix, ...argv]);
  const m = /^Error ([\w.]+): (.*)$/s.exec(r.stderr.trim());
  return { ok: r.code === 0, errorName: m?.[1], text: m?.[2] ?? r.stderr };
}

describe.skipIf(skip)('mutating calls authorized by the real polkitd', () => {
  let bus: PrivateBus;
  let polkitd: ChildProcess | undefined;
  let polkitOut = '';
  let daemon: VirtnetdProcess | undefined;
  const base = mkdtempSync(join(tmpdir(), 'vh7-polkit-'));
  chmodSync(base, 0o755);

  beforeAll(async () => {
    bus = await startPrivateBus();
    const actions = join(base, 'actions');
    const rules = join(base, 'rules');
    mkdirSync(actions);
    mkdirSync(rules);
    copyFileSync(
      join(projectRoot, 'dbus', 'org.virtnet.network1.policy'),
      join(actions, 'org.virtnet.network1.policy'),
    );
    writeFileSync(
      join(rules, '10-vh7-test.rules'),
      `polkit.addRule(function (action, subject) {
  if (action.id == "org.virtnet.network1.manage-networks" && subject.user == "nobody") return polkit.Result.YES;
});
`,
    );
    for (const p of [actions, rules]) chmodSync(p, 0o755);
    polkitd = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount --bind "$0" /usr/share/polkit-1/actions && mount --bind "$1" /etc/polkit-1/rules.d && exec ${POLKITD}`,
        actions,
        rules,
      ],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    polkitd.stdout!.on('data', (d) => {
      polkitOut += String(d);
    });
    polkitd.stderr!.on('data', (d) => {
      polkitOut += String(d);
    });
    for (let i = 0; i < 200 && !(await nameHasOwner(bus, 'org.freedesktop.PolicyKit1')); i++) await sleep(50);
    expect(await nameHasOwner(bus, 'org.freedesktop.PolicyKit1'), polkitOut).toBe(true);

    const ns = await createNetns('vh7-p');
    daemon = await startVirtnetd({
      bus,
      configDir: join(base, 'networks'),
      stateDir: join(base, 'state'),
      runDir: join(base, 'run'),
      netns: ns.name,
    });
  }, 120_000);

  afterAll(async () => {
    await daemon?.stop('SIGTERM');
    if (polkitd && polkitd.exitCode === null) polkitd.kill('SIGTERM');
    cleanupAllNetns();
    await bus?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('polkit allows uid 65534 (rule), refuses uid 1 (auth_admin, no agent)', async () => {
    const define = await dsendAs(bus, 65534, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [
      `string:${XML}`,
    ]);
    expect(define.ok, `${define.text}\n${daemon!.output()}\n${polkitOut}`).toBe(true);
    const on = await dsendAs(bus, 65534, NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:true']);
    expect(on.ok, on.text).toBe(true);

    const refused = await dsendAs(bus, 1, NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:false']);
    expect(refused.errorName, JSON.stringify(refused)).toBe('org.virtnet.network1.Error.AccessDenied');
    expect(refused.text).toMatch(/SetAutostart needs org\.virtnet\.network1\.manage-networks: /);
    const undef = await dsendAs(bus, 1, NET_PATH, `${NETWORK_IFACE}.Undefine`, []);
    expect(undef.errorName).toBe('org.virtnet.network1.Error.AccessDenied');
    // dbus-send does not allow interactive authorization: the text advises retrying with it.
    expect(refused.text).toMatch(/retry allowing interactive authorization/);
    // A caller that DID allow it (flag 0x4) is not told to retry with it.
    const inter = await execOut([
      'setpriv',
      '--reuid=1',
      '--regid=1',
      '--clear-groups',
      'busctl',
      `--address=${bus.address}`,
      '--allow-interactive-authorization=yes',
      'call',
      BUS_NAME,
      NET_PATH,
      NETWORK_IFACE,
      'SetAutostart',
      'b',
      'false',
    ]);
    expect(inter.code, inter.stderr).not.toBe(0);
    expect(inter.stderr).toMatch(/SetAutostart needs org\.virtnet\.network1\.manage-networks: /);
    expect(inter.stderr).not.toMatch(/retry allowing interactive/);
    expect(inter.stderr).toMatch(/not given|refused/);

    // Root does not depend on polkit.
    const root = await dsendAs(bus, undefined, NET_PATH, `${NETWORK_IFACE}.Undefine`, []);
    expect(root.ok, root.text).toBe(true);
    expect(daemon!.output()).toMatch(
      /allowed org\.virtnet\.network1\.manage-networks to :\S+ \(uid 65534\): polkit/,
    );
  });
});
