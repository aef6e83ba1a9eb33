/**
 * The package as a user gets it, on a booted Debian with systemd as PID 1, the system bus and polkit:
 * the .deb built by packaging/build-deb.sh is installed with apt (which resolves its Depends from the
 * release's own archive), and the unit, the bus policy and activation file, polkit's actions and the
 * maintainer scripts run for real. A veth "guest" in a network namespace inside the container gets
 * its lease from the daemon's dnsmasq with busybox udhcpc.
 *
 * The container (test/helpers/booted.ts) has a private network and a throwaway overlay over a cached
 * mmdebstrap root; nothing on this machine outside it is changed. Figures are printed ("measured:").
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BootedMachine, cachedRoot, type Release, run } from '../helpers/booted.js';
import { missingPrereqs } from '../helpers/require.js';
import { libvirtHooksDir, missingShared, projectRoot } from '../helpers/shared.js';

const skip =
  missingPrereqs(['mmdebstrap', 'systemd-nspawn', 'nsenter', 'unshare', 'dpkg-deb', 'apt-get', 'npm']) ??
  missingShared(libvirtHooksDir);

/** What the booted system has before the package: systemd, the bus, busybox for the guest, procps. */
const BASE = ['systemd', 'systemd-sysv', 'dbus', 'busybox', 'procps', 'libpam-systemd'];

/** udhcpc's script for the guest: configure the leased address (busybox sets $ip and $mask). */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/\${mask:-24}" dev "$interface" ;;
esac
`;

/** A veth "guest" NAME in its own netns inside the container, its far end a port of BRIDGE. */
function guestScript(name: string, bridge: string, port: string): string {
  return [
    'chmod 0755 /root/udhcpc.sh',
    `ip netns add ${name}`,
    `ip link add ${port} type veth peer name eth0 netns ${name}`,
    `ip link set ${port} master ${bridge} up`,
    `ip -n ${name} link set lo up`,
    `ip -n ${name} link set eth0 up`,
    // A new bridge port forwards once STP has moved it to state 3 (forwarding).
    `i=0; while [ "$(cat /sys/class/net/${port}/brport/state)" != 3 ]; do i=$((i+1)); [ $i -lt 200 ] || exit 7; sleep 0.05; done`,
  ].join('\n');
}

const lease = (guest: string, host: string) =>
  `ip netns exec ${guest} busybox udhcpc -i eth0 -f -q -n -t 10 -T 1 -x hostname:${host} -s /root/udhcpc.sh 2>&1`;

/** A dpkg-query format field, `${name}`. */
const dpkgField = (name: string) => `\${${name}}`;

function ms(a: number, b: number): string {
  return `${Math.round(b - a)} ms`;
}

/** Debian 13 (nodejs 20.19) and Debian 12 (nodejs 18.19): the package's Depends hold on both. */
const RELEASES = (process.env.VIRTNET_BOOTED_RELEASES ?? 'trixie bookworm')
  .split(/\s+/)
  .filter(Boolean) as Release[];

describe.skipIf(skip).each(RELEASES)('the .deb on a booted Debian (%s)', (release) => {
  let out: string;
  let deb: string;
  let m: BootedMachine | undefined;
  const figures: string[] = [];
  const measured = (what: string, value: string) => {
    figures.push(`${what}: ${value}`);
    console.log(`measured (${release}): ${what}: ${value}`);
  };
  // The steps build on each other: after one fails the rest fail at once, naming it.
  let failed: string | undefined;
  const step = (name: string, fn: () => Promise<void>, timeout: number) =>
    it(
      name,
      async () => {
        if (failed) throw new Error(`not run: an earlier step failed (${failed})`);
        try {
          await fn();
        } catch (e) {
          failed = name;
          const j = m
            ? (await m.exec(['journalctl', '-b', '-o', 'short-monotonic', '--no-pager', '-n', '80'])).out
            : '';
          console.log(`${release}: '${name}' failed; the container's journal (last 80 lines):\n${j}`);
          throw e;
        }
      },
      timeout,
    );
  const journal = async (unit: string) =>
    (await m!.exec(['journalctl', '-u', unit, '-o', 'cat', '--no-pager'])).out;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'virtnet-booted-deb-'));
    const b = await run(['bash', join(projectRoot, 'packaging', 'build-deb.sh'), '--out', out], {
      timeout: 300_000,
    });
    if (b.code !== 0) throw new Error(`build-deb.sh failed: ${b.err}${b.out}`);
    deb = b.out.trim().split('\n').pop()!;
    const root = await cachedRoot({ release, include: BASE, download: [deb] }, (s) =>
      console.log(`${release}: ${s}`),
    );
    m = await BootedMachine.boot(root, {
      [`/root/${basename(deb)}`]: readFileSync(deb),
      '/root/udhcpc.sh': UDHCPC_SCRIPT,
    });
  }, 900_000);

  afterAll(async () => {
    await m?.stop();
    rmSync(out, { recursive: true, force: true });
    if (figures.length) console.log(`measured (${release}):\n  ${figures.join('\n  ')}`);
  }, 60_000);

  step(
    'apt installs the .deb (Depends from the archive), the daemon starts under its unit and serves the bus',
    async () => {
      const t0 = performance.now();
      const inst = await m!.exec(['apt-get', 'install', '-y', '-q', `/root/${basename(deb)}`], {
        timeout: 300_000,
      });
      expect(inst.code, inst.out + inst.err).toBe(0);
      const t1 = performance.now();
      measured('apt-get install of the .deb and its Depends', ms(t0, t1));
      // apt pulled node and the tools from the archive (nothing was forced).
      const q = await m!.sh(
        `dpkg-query -W -f '${dpkgField('Package')} ${dpkgField('Version')} ${dpkgField('db:Status-Abbrev')}\\n' virtnet nodejs dnsmasq-base polkitd`,
      );
      for (const p of ['virtnet', 'nodejs', 'dnsmasq-base', 'polkitd'])
        expect(q).toMatch(new RegExp(`^${p} \\S+ ii`, 'm'));
      measured('nodejs', (await m!.sh('node --version')).trim());

      // postinst enabled it; --now starts it and returns once it sent READY=1 (Type=notify).
      expect((await m!.sh('systemctl is-enabled virtnetd')).trim()).toBe('enabled');
      const s0 = performance.now();
      await m!.sh('systemctl enable --now virtnetd');
      measured('systemctl enable --now virtnetd (to READY)', ms(s0, performance.now()));
      expect((await m!.sh('systemctl is-active virtnetd')).trim()).toBe('active');
      const mainPid = (await m!.sh('systemctl show -p MainPID --value virtnetd')).trim();
      expect(Number(mainPid)).toBeGreaterThan(0);
      // The hardened unit holds the real process (its filter, capabilities and read-only root).
      const status = await m!.sh(`grep -E '^(Seccomp|CapBnd|NoNewPrivs):' /proc/${mainPid}/status`);
      expect(status).toMatch(/Seccomp:\s+2/);
      expect(status).toMatch(/NoNewPrivs:\s+1/);

      const intro = await m!.sh('busctl introspect org.virtnet.network1 /org/virtnet/network1');
      expect(intro).toContain('org.virtnet.network1.Manager');
      expect(intro).toMatch(/\.ListNetworks\s+method/);
      (globalThis as { __t0?: number }).__t0 = t0;
    },
    400_000,
  );

  step(
    'starts the default network and a guest gets a lease and resolves its name',
    async () => {
      await m!.sh('virtnetctl autostart default && virtnetctl start default');
      const list = await m!.sh('virtnetctl list');
      expect(list).toMatch(/^default\s+yes\s+yes\s+virbr0\s+nat/m);
      // dnsmasq runs as nobody (the package's dnsmasq from the archive, libvirt's config).
      expect(await m!.sh('grep ^Uid: /proc/$(pgrep -x dnsmasq)/status')).toMatch(/^Uid:\s+65534\s/);
      await m!.sh(guestScript('guest1', 'virbr0', 'vg1'));
      const l = await m!.sh(lease('guest1', 'guest1'));
      const ip = /lease of (192\.168\.122\.\d+) obtained/.exec(l)?.[1];
      expect(ip, l).toBeDefined();
      const t0 = (globalThis as { __t0?: number }).__t0;
      if (t0) measured('apt install → guest lease', ms(t0, performance.now()));
      expect(await m!.sh('ip -n guest1 -4 -br addr show eth0')).toContain(`${ip}/24`);
      const ns = await m!.sh('ip netns exec guest1 busybox nslookup -type=a guest1 192.168.122.1');
      expect(ns).toContain(`Address: ${ip}`);
    },
    120_000,
  );

  step(
    'refuses an unprivileged caller and logs the refusal',
    async () => {
      const r = await m!.exec([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        'virtnetctl',
        'stop',
        'default',
      ]);
      expect(r.code).not.toBe(0);
      // polkit's answer for auth_admin without an agent: a challenge nobody can answer.
      expect(r.out + r.err).toMatch(/Stop needs org\.virtnet\.network1\.manage-networks: .* for uid 65534/);
      // Reading is allowed to anyone.
      const ro = await m!.exec([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        'virtnetctl',
        'list',
      ]);
      expect(ro.code, ro.err).toBe(0);
      expect(await journal('virtnetd')).toMatch(
        /refused org\.virtnet\.network1\.manage-networks to \S+ \(uid 65534\)/,
      );
      expect((await m!.sh('virtnetctl list')).split('\n').join(' ')).toMatch(/default\s+yes/);
    },
    60_000,
  );

  step(
    'the installed qemu hook answers through the daemon, and in-process with the daemon stopped',
    async () => {
      // libvirt 9.0's own prepare call for a domain on 'default' (arguments and stdin as captured).
      const args = readFileSync(join(libvirtHooksDir, '04-qemu-prepare-begin.args'), 'utf8')
        .trim()
        .split('\n');
      const xml = readFileSync(join(libvirtHooksDir, '04-qemu-prepare-begin.stdin.xml'), 'utf8');
      const hook = async (label: string) => {
        const timed =
          't0=$(date +%s%N); /etc/libvirt/hooks/qemu.d/virtnet "$@"; r=$?; echo "hook_ms=$(( ($(date +%s%N) - t0) / 1000000 ))" >&2; exit $r';
        const r = await m!.exec(['sh', '-c', timed, 'hook', ...args], { input: xml });
        measured(`qemu hook prepare (${label})`, `${/hook_ms=(\d+)/.exec(r.err)?.[1]} ms`);
        return r;
      };
      const up = await hook('daemon up: one dbus-send');
      expect(up.code, up.err).toBe(0);
      await m!.sh('systemctl stop virtnetd');
      const alone = await hook('daemon stopped: in-process fallback');
      expect(alone.code, alone.err).toBe(0);
      // The hook looks for an owner first: it never activates the daemon.
      expect((await m!.exec(['systemctl', 'is-active', 'virtnetd'])).out.trim()).toBe('inactive');
    },
    60_000,
  );

  step(
    'is reached again through bus activation after a stop; networks stay up meanwhile',
    async () => {
      const dnsmasq = (await m!.sh('pgrep -x dnsmasq')).trim();
      expect((await m!.exec(['systemctl', 'is-active', 'virtnetd'])).out.trim()).toBe('inactive');
      expect((await m!.sh('pgrep -x dnsmasq')).trim()).toBe(dnsmasq);
      const t = performance.now();
      const list = await m!.sh('virtnetctl list');
      measured('bus activation (virtnetctl list with virtnetd stopped)', ms(t, performance.now()));
      expect(list).toMatch(/^default\s+yes/m);
      // The bus name is claimed before READY=1: the unit may still be "activating" for a moment.
      await m!.sh(
        'i=0; until systemctl -q is-active virtnetd; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done',
      );
    },
    60_000,
  );

  step(
    'a restart keeps dnsmasq, adopts and supervises it',
    async () => {
      const before = (await m!.sh('pgrep -x dnsmasq')).trim();
      const t = performance.now();
      await m!.sh('systemctl restart virtnetd');
      measured('systemctl restart virtnetd (1 network)', ms(t, performance.now()));
      expect((await m!.sh('pgrep -x dnsmasq')).trim()).toBe(before);
      const inv = (await m!.sh('systemctl show -p InvocationID --value virtnetd')).trim();
      const j = (await m!.exec(['journalctl', `_SYSTEMD_INVOCATION_ID=${inv}`, '-o', 'cat', '--no-pager']))
        .out;
      expect(j).toMatch(/dnsmasq adopted/);
      // The guest renews from the adopted dnsmasq; killed, it is restarted by the daemon.
      expect(await m!.sh(lease('guest1', 'guest1'))).toMatch(/lease of 192\.168\.122\.\d+ obtained/);
      await m!.sh(`kill -9 ${before}`);
      await m!.sh(
        `i=0; while :; do p=$(pgrep -x dnsmasq || true); [ -n "$p" ] && [ "$p" != ${before} ] && break; i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done`,
      );
      expect(await m!.sh(lease('guest1', 'guest1'))).toMatch(/lease of 192\.168\.122\.\d+ obtained/);
    },
    90_000,
  );

  step(
    "publishing into libvirt: pending without libvirt, and the unit's VIRTNETD_LIBVIRT turns it off",
    async () => {
      const libvirtRow = async () => /^Libvirt:\s+(.*)$/m.exec(await m!.sh('virtnetctl info default'))?.[1];
      // No libvirt in this root: virtnet works, and says it publishes when libvirt appears.
      expect(await libvirtRow()).toMatch(/^pending: /);
      await m!.sh(
        'mkdir -p /etc/systemd/system/virtnetd.service.d && printf "[Service]\\nEnvironment=VIRTNETD_LIBVIRT=none\\n" > /etc/systemd/system/virtnetd.service.d/libvirt.conf && systemctl daemon-reload && systemctl restart virtnetd',
      );
      expect(await libvirtRow()).toBe('off');
      await m!.sh(
        'rm -r /etc/systemd/system/virtnetd.service.d && systemctl daemon-reload && systemctl restart virtnetd',
      );
      expect(await libvirtRow()).toMatch(/^pending: /);
    },
    60_000,
  );

  step(
    "with 10 networks up a restart keeps every one, and the guest's traffic flows through it",
    async () => {
      // Nine more networks, defined by the admin (they stay after purge: see below).
      for (let i = 1; i <= 9; i++) {
        const xml = `<network><name>net${i}</name><forward mode='nat'/><bridge name='virbr${i}' stp='on' delay='0'/><ip address='192.168.${130 + i}.1' netmask='255.255.255.0'><dhcp><range start='192.168.${130 + i}.2' end='192.168.${130 + i}.254'/></dhcp></ip></network>`;
        await m!.sh(
          `cat > /root/net${i}.xml <<'X'\n${xml}\nX\nvirtnetctl define /root/net${i}.xml && virtnetctl start net${i}`,
        );
      }
      const pids = (await m!.sh('pgrep -x dnsmasq | sort')).trim();
      expect(pids.split('\n')).toHaveLength(10);
      // 10 ms pings from the guest to its gateway across the restart.
      const out = await m!.sh(
        [
          '(ip netns exec guest1 busybox ping -i 0.01 -w 5 192.168.122.1 > /root/ping.log 2>&1 || true) &',
          'sleep 1',
          't0=$(date +%s%N); systemctl restart virtnetd; t1=$(date +%s%N)',
          'wait',
          'echo restart_ms=$(( (t1 - t0) / 1000000 ))',
          "grep -o 'seq=[0-9]*' /root/ping.log | cut -d= -f2 | tr '\\n' ' '",
        ].join('\n'),
        60_000,
      );
      measured('systemctl restart virtnetd (10 networks)', `${/restart_ms=(\d+)/.exec(out)?.[1]} ms`);
      const seqs = (out.split('\n')[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
      expect(seqs.length, out).toBeGreaterThan(50);
      let gap = 0;
      for (let i = 1; i < seqs.length; i++) gap = Math.max(gap, seqs[i]! - seqs[i - 1]! - 1);
      measured(
        'guest traffic gap across that restart (10 ms pings to the gateway)',
        `${gap * 10} ms (${seqs.length} replies, seq ${seqs[0]}–${seqs.at(-1)})`,
      );
      expect((await m!.sh('pgrep -x dnsmasq | sort')).trim()).toBe(pids);
      expect((await m!.sh('virtnetctl list')).match(/\syes\s/g)?.length).toBeGreaterThanOrEqual(10);
    },
    120_000,
  );

  step(
    'after a reboot the autostart network is up again before libvirt would start',
    async () => {
      await m!.reboot();
      const list = await m!.sh('virtnetctl list');
      expect(list).toMatch(/^default\s+yes\s+yes/m);
      // Autostart finishes before READY=1, so the unit's activation is "network active".
      const boot = Number((await m!.sh('systemctl show -p UserspaceTimestampMonotonic --value')).trim());
      const ready = Number(
        (await m!.sh('systemctl show -p ActiveEnterTimestampMonotonic --value virtnetd')).trim(),
      );
      expect(ready).toBeGreaterThan(boot);
      const exec = Number(
        (await m!.sh('systemctl show -p ExecMainStartTimestampMonotonic --value virtnetd')).trim(),
      );
      measured(
        'of which: boot → virtnetd exec, exec → READY',
        `${Math.round((exec - boot) / 1000)} ms, ${Math.round((ready - exec) / 1000)} ms`,
      );
      measured(
        'boot (container PID 1 start) → default network active',
        `${Math.round((ready - boot) / 1000)} ms`,
      );
      const before = (await m!.sh('systemctl show -p Before --value virtnetd')).split(/\s+/);
      expect(before).toEqual(expect.arrayContaining(['libvirtd.service', 'virtqemud.service']));
    },
    120_000,
  );

  step(
    'an upgrade (the same .deb again) restarts the daemon and keeps the networks',
    async () => {
      const pid = (await m!.sh('systemctl show -p MainPID --value virtnetd')).trim();
      const dnsmasq = (await m!.sh('pgrep -x dnsmasq')).trim();
      const r = await m!.exec(['apt-get', 'install', '--reinstall', '-y', '-q', `/root/${basename(deb)}`], {
        timeout: 120_000,
      });
      expect(r.code, r.out + r.err).toBe(0);
      await m!.sh(
        'i=0; until systemctl -q is-active virtnetd; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done',
      );
      expect((await m!.sh('systemctl show -p MainPID --value virtnetd')).trim()).not.toBe(pid);
      expect((await m!.sh('pgrep -x dnsmasq')).trim()).toBe(dnsmasq);
      expect(await m!.sh('virtnetctl list')).toMatch(/^default\s+yes\s+yes/m);
    },
    180_000,
  );

  step(
    'remove stops and disables the daemon, keeps the config and the running network',
    async () => {
      const dnsmasq = (await m!.sh('pgrep -x dnsmasq')).trim();
      const r = await m!.exec(['apt-get', 'remove', '-y', '-q', 'virtnet'], { timeout: 120_000 });
      expect(r.code, r.out + r.err).toBe(0);
      expect((await m!.exec(['systemctl', 'is-active', 'virtnetd'])).out.trim()).not.toBe('active');
      expect(
        await m!.sh(
          'test ! -e /usr/lib/systemd/system/virtnetd.service && test ! -e /usr/bin/virtnetctl && echo gone',
        ),
      ).toContain('gone');
      // dpkg keeps conffiles on remove; the network keeps serving.
      expect(await m!.sh('ls /etc/virtnet/networks')).toContain('default.xml');
      expect((await m!.sh('pgrep -x dnsmasq')).trim()).toBe(dnsmasq);
    },
    180_000,
  );

  step(
    "purge removes the package and its state; the admin's definitions and running networks stay",
    async () => {
      const files = (await m!.sh(`dpkg-deb -c /root/${basename(deb)} | awk '{ print $6 }' | sed 's#^\\.##'`))
        .split('\n')
        .filter((f) => f.startsWith('/usr/') || f.startsWith('/etc/'))
        .map((f) => f.replace(/\/$/, ''));
      expect(files).toContain('/usr/lib/systemd/system/virtnetd.service');
      const p = await m!.exec(['apt-get', 'purge', '-y', '-q', 'virtnet'], { timeout: 120_000 });
      expect(p.code, p.out + p.err).toBe(0);
      expect(
        (await m!.exec(['dpkg-query', '-W', '-f', dpkgField('db:Status-Abbrev'), 'virtnet'])).out.trim(),
      ).not.toMatch(/^[ir]/);
      // Every file the package shipped is gone (directories shared with others may stay).
      const still = (
        await m!.sh(
          `for f in ${files.join(' ')}; do [ -d "$f" ] && [ ! -L "$f" ] && continue; [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done; true`,
        )
      ).trim();
      expect(still).toBe('');
      const left = (
        await m!.sh(
          "find / -xdev \\( -path /proc -o -path /sys -o -path /root -o -path /var/lib/dpkg -o -path /var/log -o -path /var/cache/apt \\) -prune -o -path '*virtnet*' -print | sort; find /run/virtnet -maxdepth 1 | sort",
        )
      ).trim();
      console.log(`left after purge (${release}):\n${left}`);
      const onDisk = left.split('\n').filter((l) => !l.startsWith('/run/'));
      // Intended: the nine definitions the admin made (with their directories), nothing else on disk.
      const admin = Array.from({ length: 9 }, (_, i) => `/etc/virtnet/networks/net${i + 1}.xml`);
      expect(onDisk.sort()).toEqual(['/etc/virtnet', '/etc/virtnet/networks', ...admin].sort());
      expect(left).not.toContain('/var/lib/virtnet');
      // Running networks are runtime state and stay up (bridges, dnsmasq, /run/virtnet) until reboot.
      // (After the reboot only the autostart one, default, is up.)
      expect((await m!.sh('pgrep -x dnsmasq | wc -l')).trim()).toBe('1');
      expect(await m!.sh('ip -br link show virbr0')).toContain('virbr0');
      expect(left).toContain('/run/virtnet');
      expect((await m!.exec(['systemctl', 'is-active', 'virtnetd'])).out.trim()).not.toBe('active');
    },
    180_000,
  );
});
