/**
 * A booted Debian for the package's tests: a root made by mmdebstrap from the Debian mirror this
 * machine's apt already uses, cached under /var/cache/virtnet-test keyed by what it contains, booted
 * with `systemd-nspawn -b` on a private network (only `lo` at start: nothing inside reaches the host's
 * networks) and driven with `nsenter` into the container's namespaces.
 *
 * The cached root is never changed by a test: each boot runs on an overlay (lower: the cache, upper: a
 * temporary directory) mounted in a private mount namespace of the nspawn process, so the mount
 * disappears with it. The root holds apt's lists and the .debs the package under test needs (fetched
 * with `apt-get install --download-only` in the chroot while it is built), so apt inside the booted
 * container, which has no network, resolves and installs the Depends itself.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export const CACHE_DIR = '/var/cache/virtnet-test';

export interface Result {
  code: number;
  out: string;
  err: string;
}

/** Runs argv (no shell) with a timeout; never throws. */
export function run(
  argv: string[],
  opts: { timeout?: number; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 124) : 0;
        resolve({ code, out: String(stdout), err: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function must(argv: string[], opts: Parameters<typeof run>[1] = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.err.trim() || r.out.trim()}`);
  return r.out;
}

export type Release = 'trixie' | 'bookworm';

/**
 * The Debian archive and security URIs of this machine's own apt configuration (the sources apt
 * reads, via `apt-get indextargets`), so the root is fetched where the machine already fetches.
 */
export async function hostMirrors(): Promise<{ archive: string; security: string | undefined }> {
  const out = await must(['apt-get', 'indextargets', '--format', '$(SITE) $(RELEASE) $(TARGET_OF)']);
  const rows = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((r) => r.length === 3 && r[2] === 'deb');
  const codename = /^VERSION_CODENAME=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]?.trim();
  // The host's own release by codename, else by suite name (sources may say "stable"); the main
  // archive is the suite without a "-updates"/"-security" part.
  const archive = (rows.find((r) => r[1] === codename) ?? rows.find((r) => !r[1]!.includes('-')))?.[0];
  if (!archive) throw new Error(`no Debian archive in this machine's apt sources (apt-get indextargets)`);
  const security = rows.find((r) => r[1]!.endsWith('-security'))?.[0];
  return { archive, security };
}

export interface RootSpec {
  release: Release;
  /** Installed by mmdebstrap (the system that boots). */
  include: string[];
  /** Fetched into apt's cache, not installed: package names or paths of .debs (their Depends). */
  download: string[];
}

/** What a .deb pulls in: its Depends and Recommends fields (the cache key uses these, not the file). */
export async function debRelations(deb: string): Promise<string> {
  return must(['dpkg-deb', '-f', deb, 'Depends', 'Recommends']);
}

/**
 * A root for `spec`, built once and kept under CACHE_DIR: the key covers the release, the mirrors,
 * the installed packages and the download set (for a .deb, its relations rather than its bytes).
 */
export async function cachedRoot(spec: RootSpec, log: (s: string) => void = () => {}): Promise<string> {
  const mirrors = await hostMirrors();
  const downloadKey = await Promise.all(
    spec.download.map(async (d) => (d.endsWith('.deb') ? `deb:${await debRelations(d)}` : d)),
  );
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: 3,
        release: spec.release,
        mirrors,
        include: [...spec.include].sort(),
        download: downloadKey.sort(),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = join(CACHE_DIR, `booted-${spec.release}-${key}`);
  // What the root is, apart from its download set (see the pruning below).
  const system = JSON.stringify([spec.release, [...spec.include].sort()]);
  if (existsSync(join(dir, 'etc/os-release'))) {
    if (!existsSync(`${dir}.spec.json`)) writeFileSync(`${dir}.spec.json`, system);
    return dir;
  }

  mkdirSync(CACHE_DIR, { recursive: true });
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const sources = [
    `deb ${mirrors.archive} ${spec.release} main`,
    `deb ${mirrors.archive} ${spec.release}-updates main`,
    ...(mirrors.security ? [`deb ${mirrors.security} ${spec.release}-security main`] : []),
  ];
  const hooks: string[] = [];
  const debs = spec.download.filter((d) => d.endsWith('.deb'));
  for (const d of debs) hooks.push(`--customize-hook=copy-in ${d} /tmp`);
  const targets = spec.download.map((d) => (d.endsWith('.deb') ? `/tmp/${basename(d)}` : d));
  if (targets.length) {
    hooks.push(
      // Recommends too, as apt in the booted system installs them (mmdebstrap turns them off while
      // it builds).
      `--customize-hook=chroot "$1" apt-get install --download-only -y -q -o APT::Install-Recommends=true ${targets.join(' ')}`,
      ...debs.map((d) => `--customize-hook=rm -f "$1/tmp/${basename(d)}"`),
    );
  }
  log(`building ${dir} with mmdebstrap (${spec.release}, ${mirrors.archive})`);
  const t0 = Date.now();
  const r = await run(
    [
      'mmdebstrap',
      '--mode=root',
      '--variant=apt',
      `--include=${spec.include.join(',')}`,
      // Keep apt's lists and the fetched .debs: the booted container has no network.
      '--skip=cleanup/apt/lists,cleanup/apt/cache',
      '--customize-hook=echo virtnet-test > "$1/etc/hostname"',
      // No root password prompt on the console; logins are not used (commands enter by nsenter).
      '--customize-hook=rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"',
      ...hooks,
      spec.release,
      building,
      ...sources.map((s) => s),
    ],
    { timeout: 900_000 },
  );
  if (r.code !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(
      `mmdebstrap ${spec.release} failed (${r.code}): ${r.err.trim().split('\n').slice(-8).join('\n')}`,
    );
  }
  log(`root built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (existsSync(join(dir, 'etc/os-release'))) rmSync(building, { recursive: true, force: true });
  else {
    rmSync(dir, { recursive: true, force: true });
    renameSync(building, dir);
  }
  // A root for the same release and system whose download set changed (the .deb's Depends did) is
  // stale: remove it, so the cache holds one root per release and package list.
  for (const f of readdirSync(CACHE_DIR)) {
    if (!f.endsWith('.spec.json') || f === `${basename(dir)}.spec.json`) continue;
    try {
      if (readFileSync(join(CACHE_DIR, f), 'utf8') !== system) continue;
    } catch {
      continue;
    }
    log(`removing the stale root ${f.slice(0, -'.spec.json'.length)}`);
    rmSync(join(CACHE_DIR, f.slice(0, -'.spec.json'.length)), { recursive: true, force: true });
    rmSync(join(CACHE_DIR, f), { force: true });
  }
  writeFileSync(`${dir}.spec.json`, system);
  return dir;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A Debian root booted with systemd as PID 1 in a container of its own. */
export class BootedMachine {
  private constructor(
    readonly name: string,
    private readonly root: string,
    private readonly base: string,
    readonly consoleLog: string,
  ) {}

  private nspawn?: ChildProcess;
  /** nspawn's exit status once it has exited (133: the container asked for a reboot). */
  private exitCode: number | undefined;
  private get exited(): boolean {
    return this.exitCode !== undefined;
  }
  /** When the current boot's nspawn was started (ms since the epoch). */
  bootStartedAt = 0;

  /**
   * Boots `root` on an overlay; `files` (path in the container → content) are placed in the overlay's
   * upper layer first.
   */
  static async boot(root: string, files: Record<string, string | Buffer> = {}): Promise<BootedMachine> {
    const base = mkdtempSync(join(tmpdir(), 'virtnet-booted-'));
    const upper = join(base, 'upper');
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(base, d));
    for (const [p, content] of Object.entries(files)) {
      const dest = join(upper, p);
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, content);
    }
    const name = `vnt-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    const m = new BootedMachine(name, root, base, join(base, 'console.log'));
    process.once('exit', () => m.kill());
    m.start();
    await m.waitBooted();
    return m;
  }

  /** Starts nspawn on the overlay (mounted in a private mount namespace that ends with it). */
  private start(): void {
    const b = this.base;
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=${this.root},upperdir=${join(b, 'upper')},workdir=${join(b, 'work')} ${join(b, 'merged')}`,
      // --keep-unit: this machine's PID 1 is not systemd (no machined, no scope to make);
      // --private-network: the container gets its own netns with only lo.
      `exec systemd-nspawn -q -b --keep-unit --register=no --private-network --console=read-only -M ${this.name} -D ${join(b, 'merged')} >>${this.consoleLog} 2>&1`,
    ].join('\n');
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      stdio: 'ignore',
    });
    this.nspawn = child;
    this.exitCode = undefined;
    this.bootStartedAt = Date.now();
    child.on('exit', (code, sig) => {
      this.exitCode = code ?? (sig ? 128 : 1);
    });
  }

  /** The host pid of the container's PID 1 (systemd), or undefined while there is none. */
  leader(): number | undefined {
    const pid = this.nspawn?.pid;
    if (!pid || this.exited) return undefined;
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      for (const k of kids) {
        const comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim();
        if (comm === 'systemd') return Number(k);
      }
    } catch {}
    return undefined;
  }

  /** Waits until the container's systemd reports the boot finished (running or degraded). */
  async waitBooted(timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`nspawn exited during boot: ${this.console().slice(-2000)}`);
      const l = this.leader();
      if (l && existsSync(`/proc/${l}/root/run/systemd/private`)) {
        const r = await this.exec(['systemctl', 'is-system-running', '--wait'], { timeout: timeoutMs });
        const state = r.out.trim();
        if (state === 'running' || state === 'degraded') return state;
        if (state !== 'starting' && state !== 'initializing' && state !== '')
          throw new Error(
            `container boot ended '${state}': ${(await this.exec(['systemctl', '--failed'])).out}`,
          );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`container did not boot in ${timeoutMs} ms: ${this.console().slice(-2000)}`);
  }

  console(): string {
    try {
      return readFileSync(this.consoleLog, 'utf8');
    } catch {
      return '';
    }
  }

  /** Runs argv inside the container (all its namespaces, a clean environment), as root. */
  exec(argv: string[], opts: { timeout?: number; input?: string } = {}): Promise<Result> {
    const l = this.leader();
    if (!l) return Promise.resolve({ code: 125, out: '', err: 'container not running' });
    return run(
      ['nsenter', '-t', String(l), '-a', '--', 'env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', ...argv],
      {
        timeout: opts.timeout,
        input: opts.input,
      },
    );
  }

  /** Runs a shell script inside; throws with its output when it fails. */
  async sh(script: string, timeout = 120_000): Promise<string> {
    const r = await this.exec(['sh', '-ec', script], { timeout });
    if (r.code !== 0) {
      // What virtnetd said lately, so a failure explains itself.
      const j = await this.exec([
        'journalctl',
        '-u',
        'virtnetd',
        '-n',
        '30',
        '--no-pager',
        '-o',
        'short-monotonic',
      ]);
      throw new Error(
        `in the container, exit ${r.code}:\n${script}\n--- stdout\n${r.out}\n--- stderr\n${r.err}\n--- journalctl -u virtnetd\n${j.out}`,
      );
    }
    return r.out;
  }

  /** Reboots from inside (`systemctl reboot`) and waits for the new boot to finish. */
  async reboot(timeoutMs = 90_000): Promise<void> {
    await this.exec(['systemctl', 'reboot']);
    // nspawn (systemd 252) ends with status 133 when the container reboots; like
    // systemd-nspawn@.service (RestartForceExitStatus=133) we start it again on the same overlay.
    const deadline = Date.now() + timeoutMs;
    while (!this.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.exitCode !== 133)
      throw new Error(`reboot: nspawn ended with ${this.exitCode ?? 'nothing (timeout)'}`);
    this.start();
    await this.waitBooted(timeoutMs);
  }

  /** Powers the container off (SIGTERM to nspawn = orderly shutdown), kills it if that hangs, cleans up. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const pid = this.nspawn?.pid;
    if (pid && !this.exited) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
      const deadline = Date.now() + timeoutMs;
      while (!this.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (!this.exited) this.kill();
      const d2 = Date.now() + 10_000;
      while (!this.exited && Date.now() < d2) await new Promise((r) => setTimeout(r, 100));
    }
    rmSync(this.base, { recursive: true, force: true });
  }

  /** SIGKILL the container's PID 1 (ends its pid namespace) and nspawn. */
  private kill(): void {
    if (this.exited) return;
    const l = this.leader();
    for (const p of [l, this.nspawn?.pid]) {
      if (!p) continue;
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
  }
}
