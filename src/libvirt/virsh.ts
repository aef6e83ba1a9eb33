/**
 * libvirt through `virsh -c URI` (the command runner; argv only). virtnetd — never a hook — uses it to
 * publish its networks into libvirt and to import libvirt's networks. Each call is bounded: a libvirtd
 * that hangs costs a timeout, never a stuck daemon.
 *
 * Errors: `LibvirtUnreachable` when virsh cannot connect (libvirt not installed, not running, socket
 * refused); any other failure is a CommandError carrying virsh's argv and stderr.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError } from '../errors.js';
import type { CommandRunner, RunResult } from '../exec/runner.js';
import { childElements, parseXmlDocument, textContent } from '../model/xml.js';
import type { LibvirtState } from './publish.js';

export class LibvirtUnreachable extends Error {
  override readonly name = 'LibvirtUnreachable';
}

const TIMEOUT_MS = 15_000;

/** A running domain's interface on a libvirt network, from its live XML. */
export interface DomainPort {
  domain: string;
  /** The domain's uuid ('' when the XML has none). */
  uuid?: string;
  /** The tap (`<target dev=…>`). */
  ifname: string;
  mac: string;
}

export class Virsh {
  /** `tmpDir`: where a definition is written for `virsh net-define FILE` (virsh reads no stdin socket). */
  constructor(
    private readonly runner: CommandRunner,
    readonly uri: string,
    private readonly tmpDir: string = tmpdir(),
  ) {}

  /** virsh ARGS; a failure is a CommandError unless `tolerate` accepts it (then it is returned). */
  private async run(
    what: string,
    args: string[],
    tolerate: (r: RunResult) => boolean = () => false,
  ): Promise<RunResult> {
    const argv = ['virsh', '-q', '-c', this.uri, ...args];
    let r: RunResult;
    try {
      r = await this.runner.run({
        step: `libvirt: ${what}`,
        argv,
        allowFail: true,
        timeoutMs: TIMEOUT_MS,
      });
    } catch (e) {
      // virsh missing (ENOENT) or killed by the timeout: libvirt is not there for us.
      throw new LibvirtUnreachable(`cannot run virsh for ${this.uri}: ${(e as Error).message}`);
    }
    if (r.exitCode !== 0 && /failed to connect to the hypervisor|Failed to connect socket/i.test(r.stderr)) {
      throw new LibvirtUnreachable(`libvirt at ${this.uri} is not reachable: ${firstError(r.stderr)}`);
    }
    if (r.exitCode !== 0 && !tolerate(r)) {
      throw new CommandError(`libvirt: ${what}`, argv, r.exitCode, r.stderr);
    }
    return r;
  }

  /** Is libvirt answering? (LibvirtUnreachable otherwise.) */
  async ping(): Promise<void> {
    const r = await this.run('connect', ['uri'], () => true);
    // Any failure of the trivial call (killed by the timeout, a broken client) counts as unreachable.
    if (r.exitCode !== 0)
      throw new LibvirtUnreachable(
        `libvirt at ${this.uri} does not answer: ${r.stderr.trim() ? firstError(r.stderr) : r.exitCode === -1 ? 'timed out' : `virsh exited ${r.exitCode}`}`,
      );
  }

  /** libvirt's view of network `name`: inactive XML (undefined = not defined), active, autostart. */
  async network(name: string): Promise<LibvirtState> {
    const x = await this.run(`read network ${name}`, ['net-dumpxml', '--inactive', name], (r) =>
      /Network not found|no network with matching name/i.test(r.stderr),
    );
    if (x.exitCode !== 0) return { active: false, autostart: false };
    const info = parseInfo((await this.run(`info of network ${name}`, ['net-info', name])).stdout);
    return { xml: x.stdout, active: info.Active === 'yes', autostart: info.Autostart === 'yes' };
  }

  /** The live XML of an active network (what `virsh net-dumpxml` shows, e.g. its bridge). */
  async liveXml(name: string): Promise<string> {
    return (await this.run(`read active network ${name}`, ['net-dumpxml', name])).stdout;
  }

  /** Define (or redefine) a network from XML (through a private temp file: virsh reads only files). */
  async define(xml: string): Promise<void> {
    const dir = await mkdtemp(join(this.tmpDir, 'virtnet-define-'));
    try {
      const file = join(dir, 'network.xml');
      await writeFile(file, xml, { mode: 0o600 });
      await this.run('define network', ['net-define', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async setAutostart(name: string, on: boolean): Promise<void> {
    await this.run(`autostart network ${name}`, ['net-autostart', name, ...(on ? [] : ['--disable'])]);
  }

  async start(name: string): Promise<void> {
    await this.run(`start network ${name}`, ['net-start', name]);
  }

  async destroy(name: string): Promise<void> {
    await this.run(`stop network ${name}`, ['net-destroy', name]);
  }

  async undefine(name: string): Promise<void> {
    await this.run(`undefine network ${name}`, ['net-undefine', name]);
  }

  /**
   * Interfaces of running domains on libvirt network `network` — its `<source network=…>`, or (with
   * `bridge`) a `type='bridge'` interface on that bridge — from their live XML.
   */
  async portsOn(network: string, bridge = ''): Promise<DomainPort[]> {
    const names = (await this.run('list running domains', ['list', '--name'])).stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    const xmls = await Promise.all(
      names.map((d) => this.run(`read domain ${d}`, ['dumpxml', d], () => true)),
    );
    const out: DomainPort[] = [];
    // A domain that stopped meanwhile has no XML (non-zero exit): skipped.
    for (const x of xmls) if (x.exitCode === 0) out.push(...domainPortsOn(x.stdout, network, bridge));
    return out;
  }
}

/** Pure: the interfaces of a live domain XML on `network` (or, when given, directly on `bridge`). */
export function domainPortsOn(domainXml: string, network: string, bridge = ''): DomainPort[] {
  const root = parseXmlDocument(domainXml);
  const name = childElements(root).find((c) => c.name === 'name');
  const domain = name ? textContent(name).trim() : '';
  const uuidEl = childElements(root).find((c) => c.name === 'uuid');
  const uuid = uuidEl ? textContent(uuidEl).trim().toLowerCase() : '';
  const devices = childElements(root).find((c) => c.name === 'devices');
  if (!devices) return [];
  const out: DomainPort[] = [];
  for (const i of childElements(devices)) {
    if (i.name !== 'interface') continue;
    const kids = childElements(i);
    const src = kids.find((c) => c.name === 'source');
    const onNetwork = src?.attrs.network === network;
    const onBridge = bridge !== '' && i.attrs.type === 'bridge' && src?.attrs.bridge === bridge;
    if (!onNetwork && !onBridge) continue;
    const dev = kids.find((c) => c.name === 'target')?.attrs.dev;
    const mac = kids.find((c) => c.name === 'mac')?.attrs.address;
    if (dev && mac) out.push({ domain, uuid, ifname: dev, mac: mac.toLowerCase() });
  }
  return out;
}

/** `virsh net-info` lines "Key: value" → record. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z ]+):\s*(.*)$/.exec(line.trim());
    if (m) out[m[1]!.trim()] = m[2]!.trim();
  }
  return out;
}

function firstError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '(no message)';
}
