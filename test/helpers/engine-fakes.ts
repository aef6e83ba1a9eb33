/**
 * The engine's host-side doubles for tests of the REAL LinuxEngine on the dry-run runner: links and
 * routes, sysctls, and dnsmasq as the supervisor sees it (running from its start command until SIGTERM).
 */
import type { ProcessProbe } from '../../src/dnsmasq/proc.js';
import type { HostProbe, HostRoute } from '../../src/engine/host.js';
import type { SysctlIo } from '../../src/engine/sysctl.js';
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
