/**
 * The engine's host-side doubles for tests of the REAL LinuxEngine on the dry-run runner: links and
 * routes, sysctls, and dnsmasq as the supervisor sees it (running from its start command until SIGTERM).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessProbe } from '../../src/dnsmasq/proc.js';
import { LinuxEngine } from '../../src/engine/engine.js';
import type { HostProbe, HostRoute } from '../../src/engine/host.js';
import type { SysctlIo } from '../../src/engine/sysctl.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import type { Network } from '../../src/model/network.js';
import type { NicState } from '../../src/plan/links.js';

export class FakeHost implements HostProbe {
  links_ = new Set(['lo', 'eth0']);
  masters = new Map<string, string>();
  routes_: HostRoute[] = [{ family: 'ipv4', dest: '192.0.2.0', prefix: 24, dev: 'eth0' }];
  async linkExists(n: string) {
    return this.links_.has(n);
  }
  async isBridge() {
    return false;
  }
  async masterOf(n: string) {
    return this.masters.get(n);
  }
  async links() {
    return [...this.links_];
  }
  async routes() {
    return this.routes_;
  }
  async raDefaultRouteDevs() {
    return [];
  }
  async nicState(name: string): Promise<NicState> {
    return { name, mac: '02:00:00:00:00:01', mtu: 1500, addrs: [], routes: [] };
  }
}

export class FakeSysctl implements SysctlIo {
  values = new Map<string, string>([['net.ipv4.ip_forward', '0']]);
  async read(k: string) {
    return this.values.get(k) ?? '0';
  }
  async write(k: string, v: string) {
    this.values.set(k, v);
  }
}

/** dnsmasq as the supervisor sees it: "running" from the start command until SIGTERM. */
export class FakeDnsmasq implements ProcessProbe {
  pid = 4000;
  alive = false;
  conf = '';
  started(argv: readonly string[]) {
    this.pid += 1;
    this.alive = true;
    this.conf = argv.find((a) => a.startsWith('--conf-file='))?.slice('--conf-file='.length) ?? '';
  }
  async readPidFile() {
    return this.alive ? this.pid : undefined;
  }
  stat(pid: number) {
    return this.alive && pid === this.pid ? { state: 'S', ppid: 1, startTime: pid } : undefined;
  }
  cmdline(pid: number) {
    return this.alive && pid === this.pid ? ['dnsmasq', `--conf-file=${this.conf}`] : undefined;
  }
  kill(pid: number, signal: NodeJS.Signals | 0) {
    if (pid === this.pid && (signal === 'SIGTERM' || signal === 'SIGKILL')) this.alive = false;
  }
}

/**
 * The real LinuxEngine on the dry-run runner with the host doubles above, `net` started in it (run
 * dir `dir`): what the hook handler's tests run next to the in-memory fake, so both meet one contract.
 */
export async function dryRunEngine(dir: string, net: Network): Promise<LinuxEngine> {
  const runner = new DryRunRunner();
  const dnsmasq = new FakeDnsmasq();
  runner.on(['dnsmasq'], (req) => {
    dnsmasq.started(req.argv);
    return {};
  });
  const host = new FakeHost();
  const engine = await LinuxEngine.create({
    runDir: dir,
    runner,
    probe: host,
    sysctl: new FakeSysctl(),
    dnsmasqProbe: dnsmasq,
    firewall: 'nftables',
    supervisor: { pollMs: 10_000 },
  });
  await engine.start(net);
  host.links_.add(net.bridge.name!);
  return engine;
}

/** Every file under `dir` whose name ends with `suffix`, concatenated. */
export function filesEnding(dir: string, suffix: string): string {
  let out = '';
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(suffix)) out += readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}
