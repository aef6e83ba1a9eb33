/**
 * Live migration of a real QEMU (TCG) domain between two hosts of a span, through real libvirt:
 * the span topology's three "host" namespaces, each with its own private bus and virtnetd; hosts 1
 * (the gateway) and 2 (a member) each run a sealed libvirtd (its own host_uuid, virtnet's hooks from
 * hooks/, libvirt's network `lab` as the bridge-mode twin on virtnet's bridge). A diskless domain
 * (`<interface type='network'>`, iPXE) leases on host 1, then `virsh migrate --live` moves it to
 * host 2 with QEMU's migration stream over the underlay.
 *
 * Proves: the qemu hook calls of a migration do the right thing on both sides (destination:
 * migrate/prepare/start/started — the domain's record and its tap on host 2's bridge; source:
 * stopped/release — its record gone), the domain keeps its MAC and its lease / reserved address on
 * the gateway, and host 3's kernel follows the MAC to host 2 (QEMU's self-announcement after the
 * switch-over). The guest's iPXE stops answering once its boot attempt fails, so what is measured is
 * libvirt's own figure for the guest's downtime and how long after the start of the migration host
 * 3's FDB pointed at host 2. Nothing touches the root namespace.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEvpnBgpSnippet } from '../../src/frr/evpn.js';
import { spanRole } from '../../src/model/span.js';
import {
  BUS_NAME,
  busctl,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { FRR_TOOLS, type Frr, startFrr } from '../helpers/frr.js';
import { LIBVIRT_VM_TOOLS, type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import { cleanupAllNetns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import { type SpanTopology, spanNetwork, spanTopology, spanXml, UNDERLAY } from './span-harness.js';

const skip = missingPrereqs([...LIBVIRT_VM_TOOLS, 'bridge', 'busybox']);
const skipEvpn = skip || missingPrereqs(FRR_TOOLS);
const NET_PATH = `${MANAGER_PATH}/network/lab`;
const DOM = 'mvm';
const MAC = '52:54:00:aa:10:07';
const IP = '10.88.0.57';
const TAP = 'vmig0';
/** The shared definition with the migrating domain's reservation (names live on the gateway). */
const xmlOf = (mode: 'vxlan' | 'evpn') =>
  spanXml(mode).replace('</dhcp>', `  <host mac='${MAC}' name='${DOM}' ip='${IP}'/>\n    </dhcp>`);
const DOMAIN_XML = `<domain type='qemu'>
  <name>${DOM}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='network'>
      <source network='lab'/>
      <mac address='${MAC}'/>
      <target dev='${TAP}'/>
      <model type='virtio'/>
    </interface>
    <serial type='null'/>
  </devices>
</domain>
`;

for (const mode of ['vxlan', 'evpn'] as const)
  describe.skipIf(mode === 'evpn' ? skipEvpn : skip)(
    `span ${mode}: live migration of a QEMU domain through real libvirt, host 1 → host 2`,
    () => {
      let t: SpanTopology;
      const frr: Frr[] = [];
      let base: string;
      const buses: PrivateBus[] = [];
      const daemons: VirtnetdProcess[] = [];
      const lvds: SealedLibvirt[] = [];
      const runDirs: string[] = [];

      const records = (i: number) => {
        try {
          return readdirSync(join(runDirs[i]!, 'hooks', 'domains')).filter((f) => !f.startsWith('.'));
        } catch {
          return [];
        }
      };
      const fdbOnHost3 = async () =>
        (await t.hosts[2]!.exec(['bridge', 'fdb', 'show', 'dev', 'vx10100'])).stdout;
      const bridgePorts = async (i: number) =>
        (await t.hosts[i]!.exec(['ip', '-o', 'link', 'show', 'master', 'vsp0'])).stdout;

      beforeAll(async () => {
        t = await spanTopology();
        base = mkdtempSync(join(tmpdir(), 'vsp-mig-'));
        chmodSync(base, 0o755);
        if (mode === 'evpn') {
          // FRR per host (zebra + bgpd with the snippet virtnet prints); each virtnetd reaches its own.
          const net = spanNetwork('evpn');
          for (let i = 0; i < 3; i++)
            frr.push(
              await startFrr(t.hosts[i]!, renderEvpnBgpSnippet(net.span!, spanRole(net, [UNDERLAY[i]!]))),
            );
        }
        for (let i = 0; i < 3; i++) {
          const bus = await startPrivateBus();
          buses.push(bus);
          const d = join(base, `h${i + 1}`);
          runDirs.push(join(d, 'run'));
          daemons.push(
            await startVirtnetd({
              bus,
              configDir: join(d, 'networks'),
              stateDir: join(d, 'state'),
              runDir: join(d, 'run'),
              netns: t.hosts[i]!.name,
              ...(mode === 'evpn' ? { extraArgs: ['--frr-vty-socket', join(t.hosts[i]!.dir, 'frr')] } : {}),
            }),
          );
          const def = await busctl(bus, [
            'call',
            BUS_NAME,
            MANAGER_PATH,
            MANAGER_IFACE,
            'DefineNetwork',
            's',
            xmlOf(mode),
          ]);
          expect(def.code, def.stderr + daemons[i]!.output()).toBe(0);
          const st = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
          expect(st.code, st.stderr + daemons[i]!.output()).toBe(0);
        }
        for (let i = 0; i < 2; i++) {
          const dir = join(base, `lv${i + 1}`);
          mkdirSync(dir);
          const lvd = await startSealedLibvirtd({
            netns: t.hosts[i]!.name,
            dir,
            bus: buses[i]!,
            hostUuid: `6f3c1e2a-0000-4000-8000-00000000010${i + 1}`,
            hooks: {
              qemu: join(projectRoot, 'hooks', 'qemu'),
              network: join(projectRoot, 'hooks', 'network'),
            },
          });
          lvds.push(lvd);
          // libvirt's network of the virtnet network's name, bridge mode on its bridge.
          writeFileSync(
            join(dir, 'lab.xml'),
            "<network><name>lab</name><forward mode='bridge'/><bridge name='vsp0'/></network>",
          );
          for (const args of [
            ['net-define', join(dir, 'lab.xml')],
            ['net-start', 'lab'],
          ]) {
            const r = await lvd.virsh(...args);
            expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
          }
        }
      }, 180_000);

      afterAll(async () => {
        for (const l of lvds) await l.virsh('destroy', DOM).catch(() => {});
        for (const d of daemons) await d.stop('SIGTERM').catch(() => {});
        for (const f of frr) await f.stop().catch(() => {});
        cleanupAllNetns(); // ends libvirtd, QEMU and dnsmasq: every pid in our namespaces
        for (const b of buses) await b.stop().catch(() => {});
        for (const l of lvds) l.stop();
        if (base) rmSync(base, { recursive: true, force: true });
      });

      it('the domain starts on host 1 (gateway) and leases its reserved address from virtnet', async () => {
        writeFileSync(join(base, 'domain.xml'), DOMAIN_XML);
        const def = await lvds[0]!.virsh('define', join(base, 'domain.xml'));
        expect(def.code, def.stderr).toBe(0);
        const st = await lvds[0]!.virsh('start', DOM);
        expect(st.code, `${st.stderr}\n${lvds[0]!.log()}`).toBe(0);
        expect(await bridgePorts(0)).toContain(TAP);
        expect(records(0)).toHaveLength(1);
        let leases = '';
        for (let i = 0; i < 120 && !leases.includes(IP); i++) {
          await sleep(500);
          leases = (await busctl(buses[0]!, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases'])).stdout;
        }
        expect(leases).toContain(MAC);
        expect(leases).toContain(IP);
        // Host 3 knows the MAC behind host 1: its DHCP broadcast crossed the overlay (vxlan: kernel
        // learning), or host 1's FRR announced it (evpn: zebra's FDB entry).
        let fdb = '';
        for (let i = 0; i < 100 && !fdb.includes(`${MAC} dst ${UNDERLAY[0]}`); i++) {
          if (i) await sleep(100);
          fdb = await fdbOnHost3();
        }
        expect(fdb).toContain(`${MAC} dst ${UNDERLAY[0]}`);
      }, 120_000);

      it('virsh migrate --live moves it to host 2: hooks on both sides, same MAC and lease, host 3 follows', async () => {
        const t0 = performance.now();
        let migrateDone = 0;
        const mig = lvds[0]!
          .virsh(
            'migrate',
            '--live',
            DOM,
            lvds[1]!.uri,
            '--migrateuri',
            `tcp://${UNDERLAY[1]}`,
            '--listen-address',
            UNDERLAY[1]!,
          )
          .then((r) => {
            migrateDone = performance.now() - t0;
            return r;
          });
        // Host 3's FDB, polled while the migration runs: when does the MAC point at host 2?
        let switched = 0;
        while (!switched && performance.now() - t0 < 60_000) {
          if ((await fdbOnHost3()).includes(`${MAC} dst ${UNDERLAY[1]}`)) switched = performance.now() - t0;
          else await sleep(5);
        }
        const r = await mig;
        expect(r.code, `${r.stderr}\n${lvds[0]!.log()}\n${lvds[1]!.log()}`).toBe(0);
        expect(switched, 'host 3 FDB never pointed at host 2').toBeGreaterThan(0);
        // libvirt's statistics of the finished job (QEMU's own downtime figure), on either side.
        let downtime: string | undefined;
        for (const l of [lvds[1]!, lvds[0]!]) {
          const job = await l.virsh('domjobinfo', DOM, '--completed');
          downtime ??= job.stdout.match(/^Total downtime:\s+(\d+)\s*ms/m)?.[1];
        }
        console.log(
          `span ${mode} live migration (libvirt, TCG, 64 MiB): virsh migrate ${migrateDone.toFixed(0)} ms, host 3's FDB at host 2 after ${switched.toFixed(0)} ms, libvirt's guest downtime ${downtime ?? '?'} ms`,
        );

        // Destination: running, the same MAC, its tap on host 2's bridge, the hook's record there.
        expect((await lvds[1]!.virsh('domstate', DOM)).stdout.trim()).toBe('running');
        expect((await lvds[1]!.virsh('domiflist', DOM)).stdout).toContain(MAC);
        expect(await bridgePorts(1)).toContain(TAP);
        expect(records(1)).toHaveLength(1);
        // Source: stopped/release took back everything; the tap is gone from host 1.
        expect((await lvds[0]!.virsh('domstate', DOM)).stdout.trim()).toBe('shut off');
        expect(records(0)).toEqual([]);
        expect(await bridgePorts(0)).not.toContain(TAP);
        // The gateway still serves the reservation and the lease (nothing was sent between hosts).
        const leases = (await busctl(buses[0]!, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']))
          .stdout;
        expect(leases).toContain(MAC);
        expect(leases).toContain(IP);
        const dns = await t.hosts[0]!.exec(['busybox', 'nslookup', '-type=a', `${DOM}.lab`, '10.88.0.1'], {
          allowFail: true,
        });
        expect(dns.stdout).toContain(IP);
      }, 120_000);

      it('a domain without a reservation starts on the member too (its name is left to DHCP)', async () => {
        const xml = DOMAIN_XML.replaceAll(DOM, 'plain')
          .replace(MAC, '52:54:00:aa:10:08')
          .replace(TAP, 'vplain0');
        writeFileSync(join(base, 'plain.xml'), xml);
        expect((await lvds[1]!.virsh('define', join(base, 'plain.xml'))).code).toBe(0);
        const st = await lvds[1]!.virsh('start', 'plain');
        expect(st.code, `${st.stderr}\n${lvds[1]!.log()}`).toBe(0);
        expect(await bridgePorts(1)).toContain('vplain0');
        expect(records(1)).toHaveLength(2);
        expect((await lvds[1]!.virsh('destroy', 'plain')).code).toBe(0);
      }, 60_000);

      it('destroy on host 2 takes back what its hooks did', async () => {
        const r = await lvds[1]!.virsh('destroy', DOM);
        expect(r.code, r.stderr).toBe(0);
        expect(records(1)).toEqual([]);
        expect(await bridgePorts(1)).not.toContain(TAP);
      }, 60_000);
    },
  );
