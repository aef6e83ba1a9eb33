/**
 * virtnetd's log formats end to end (the real executable on a private bus, no networks, so nothing
 * on the host changes): `--log-format json` gives one JSON object per line with a timestamp; under
 * journald (JOURNAL_STREAM set) each line starts with its `<N>` syslog priority and has no time;
 * the default is readable text with a time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateBus, startPrivateBus } from '../helpers/dbus.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const missing = missingPrereqs(['dbus-daemon']);

/** Start virtnetd, wait for its "ready" line, send SIGTERM, return everything it wrote on stderr. */
async function runDaemon(bus: PrivateBus, extra: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vh11-logfmt-'));
  let child: ChildProcess | undefined;
  try {
    child = spawn(
      'node',
      [
        '--import',
        join(projectRoot, 'test/helpers/ts-register.mjs'),
        join(projectRoot, 'src/bin/virtnetd.ts'),
        '--bus',
        bus.address,
        '--config-dir',
        join(dir, 'networks'),
        '--state-dir',
        join(dir, 'state'),
        '--run-dir',
        join(dir, 'run'),
        '--firewall',
        'nftables',
        '--libvirt',
        'none',
        ...extra,
      ],
      {
        env: { ...process.env, JOURNAL_STREAM: '', NOTIFY_SOCKET: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    const p = child;
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`virtnetd not ready in 30 s; stderr:\n${err}`)), 30_000);
      p.stderr!.on('data', (d: Buffer) => {
        err += d.toString('utf8');
        if (/ready on /.test(err)) {
          clearTimeout(t);
          resolve();
        }
      });
      p.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`virtnetd exited ${code}; stderr:\n${err}`));
      });
    });
    p.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise((r) => setTimeout(() => r(`still running 30 s after SIGTERM; stderr:\n${err}`), 30_000)),
    ]);
    expect(code).toBe(0);
    return err;
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(missing)('virtnetd log formats', () => {
  let bus: PrivateBus;
  beforeAll(async () => {
    bus = await startPrivateBus();
  });
  afterAll(async () => {
    await bus?.stop();
  });

  it('--log-format json: one JSON object per line, syslog level names, timestamps', async () => {
    const err = await runDaemon(bus, ['--log-format', 'json'], {});
    const lines = err.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objs) {
      expect(typeof o.message).toBe('string');
      expect(['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug']).toContain(o.level);
      expect(o.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    }
    const messages = objs.map((o) => o.message);
    expect(messages).toContainEqual(expect.stringMatching(/^virtnetd \S+ ready on unix:/));
    expect(messages).toContainEqual(expect.stringMatching(/^shutting down \(SIGTERM\)/));
  }, 90_000);

  it('under journald: <N> priority prefix, no timestamp; text and json', async () => {
    const text = await runDaemon(bus, [], { JOURNAL_STREAM: '8:12345' });
    for (const l of text.trimEnd().split('\n')) expect(l).toMatch(/^<[0-7]>(?!\d{4}-)/);
    expect(text).toMatch(/^<6>virtnetd \S+ ready on /m);
    const json = await runDaemon(bus, ['--log-format=json', '--log-level', 'debug'], {
      JOURNAL_STREAM: '8:1',
    });
    for (const l of json.trimEnd().split('\n')) {
      const m = /^<([0-7])>(\{.*\})$/.exec(l);
      expect(m, l).not.toBeNull();
      const o = JSON.parse(m![2]!) as Record<string, unknown>;
      expect(o.timestamp).toBeUndefined();
      const prio = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 }[o.level as string];
      expect(Number(m![1])).toBe(prio);
    }
  }, 90_000);

  it('default text: time, level, message', async () => {
    const text = await runDaemon(bus, [], {});
    for (const l of text.trimEnd().split('\n'))
      expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (info|notice|warning|error|debug)\s+\S/);
  }, 90_000);
});
