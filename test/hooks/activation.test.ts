/**
 * The real hook program (hooks/qemu) against a private system bus on which org.virtnet.network1 is
 * activatable but the daemon cannot serve: its Exec fails at once, or hangs, or a process owns the name
 * and never answers (stopped). A domain that is not on virtnet must still start (exit 0), quickly: the
 * hook never activates the daemon and treats "no owner" as "no daemon" (the in-process handler).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_NAME, nameHasOwner, type PrivateBus, startPrivateBus } from '../helpers/dbus.js';
import { sleep } from '../helpers/netns.js';
import { projectRoot } from '../helpers/shared.js';

const PLAIN = "<domain type='qemu'>\n  <name>plain</name>\n  <devices/>\n</domain>\n";

describe('hooks/qemu when the daemon cannot be activated or does not answer', () => {
  const base = mkdtempSync(join(tmpdir(), 'vnet-hookact-'));
  const buses: PrivateBus[] = [];
  let owner: ChildProcess | undefined;

  function serviceDir(name: string, exec: string): string {
    const d = join(base, name);
    mkdirSync(d);
    writeFileSync(
      join(d, `${BUS_NAME}.service`),
      `[D-BUS Service]\nName=${BUS_NAME}\nExec=${exec}\nUser=root\n`,
    );
    return d;
  }

  function runHook(bus: PrivateBus) {
    const t0 = Date.now();
    const r = spawnSync(join(projectRoot, 'hooks', 'qemu'), ['plain', 'prepare', 'begin', '-'], {
      input: PLAIN,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        DBUS_SYSTEM_BUS_ADDRESS: bus.address,
        VIRTNET_HOOK_TIMEOUT_MS: '2000',
        VIRTNET_CONFIG_DIR: join(base, 'networks'),
        VIRTNET_RUN_DIR: join(base, 'run'),
      },
    });
    return { ...r, ms: Date.now() - t0 };
  }

  beforeAll(() => {
    mkdirSync(join(base, 'networks'));
    mkdirSync(join(base, 'run'));
  });
  afterAll(async () => {
    if (owner?.pid && owner.exitCode === null) {
      process.kill(owner.pid, 'SIGCONT');
      owner.kill('SIGKILL');
    }
    for (const b of buses) await b.stop();
    rmSync(base, { recursive: true, force: true });
  });

  for (const [label, exec] of [
    ['fails at once', '/bin/false'],
    ['hangs', '/bin/sleep 300'],
  ] as const) {
    it(`activation that ${label}: a plain domain's prepare exits 0 within 5 s`, async () => {
      const bus = await startPrivateBus({ serviceDirs: [serviceDir(label.replace(/\W/g, '-'), exec)] });
      buses.push(bus);
      const r = runHook(bus);
      expect(r.status, `${r.stderr}`).toBe(0);
      expect(r.ms).toBeLessThan(5_000);
      expect(await nameHasOwner(bus, BUS_NAME)).toBe(false);
    });
  }

  it('an owner that does not answer (stopped): bounded, and a plain domain still starts', async () => {
    const bus = await startPrivateBus();
    buses.push(bus);
    const script = `const d=require('@jellybrick/dbus-next');const b=d.sessionBus({busAddress:process.env.A});b.requestName(${JSON.stringify(BUS_NAME)},4).catch((e)=>{console.error(e);process.exit(1)});setInterval(()=>{},1000);`;
    owner = spawn(process.execPath, ['-e', script], {
      cwd: projectRoot,
      env: { ...process.env, A: bus.address },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; i < 100 && !(await nameHasOwner(bus, BUS_NAME)); i++) await sleep(50);
    expect(await nameHasOwner(bus, BUS_NAME)).toBe(true);
    process.kill(owner.pid!, 'SIGSTOP');
    const r = runHook(bus);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/did not answer within 2000 ms; handling it in-process/);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('a stale daemon.busname (that daemon is gone): no activation, a plain domain starts at once', async () => {
    const bus = await startPrivateBus({ serviceDirs: [serviceDir('stale-hangs', '/bin/sleep 300')] });
    buses.push(bus);
    writeFileSync(join(base, 'run', 'daemon.busname'), ':1.9999\n');
    try {
      const r = runHook(bus);
      expect(r.status, r.stderr).toBe(0);
      expect(r.ms).toBeLessThan(5_000);
      expect(await nameHasOwner(bus, BUS_NAME)).toBe(false);
    } finally {
      rmSync(join(base, 'run', 'daemon.busname'), { force: true });
    }
  });

  it('daemon.busname naming a connection that is not virtnetd: treated as no daemon', async () => {
    const bus = await startPrivateBus();
    buses.push(bus);
    // A plain bus client that prints its unique name and serves nothing.
    const script = `const d=require('@jellybrick/dbus-next');const b=d.sessionBus({busAddress:process.env.A});b.on('connect',()=>console.log(b.name));setInterval(()=>{},1000);`;
    const other = spawn(process.execPath, ['-e', script], {
      cwd: projectRoot,
      env: { ...process.env, A: bus.address },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const name = await new Promise<string>((resolve) =>
        other.stdout!.on('data', (d) => resolve(String(d).trim())),
      );
      expect(name).toMatch(/^:\d+\.\d+$/);
      writeFileSync(join(base, 'run', 'daemon.busname'), `${name}\n`);
      const r = runHook(bus);
      expect(r.status, r.stderr).toBe(0);
      // Its error reply (not a timeout) is what sent the hook to the in-process handler.
      expect(r.stderr).not.toMatch(/did not answer/);
      expect(r.ms).toBeLessThan(5_000);
    } finally {
      other.kill('SIGKILL');
      rmSync(join(base, 'run', 'daemon.busname'), { force: true });
    }
  });
});
