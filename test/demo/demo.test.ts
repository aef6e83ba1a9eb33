/**
 * The README's first command: the demo, run non-interactively (--check exits after its checks).
 * Runs the built program (npm test builds first), as a user would.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const entry = join(projectRoot, 'dist', 'test', 'demo', 'main.js');
const skip = missingPrereqs(['ip', 'dnsmasq', 'dbus-daemon', 'dbus-send', 'busctl', 'busybox', 'nft']);

function runDemo(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [entry, ...args],
      { timeout: 180_000, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
      },
    );
  });
}

function netnsList(): Promise<string> {
  return new Promise((resolve) => execFile('ip', ['netns', 'list'], (_e, out) => resolve(String(out))));
}

describe.skipIf(skip)('npm run demo --check', () => {
  it('is built', () => {
    expect(existsSync(entry), `${entry} missing: run npm run build`).toBe(true);
  });

  for (const firewall of ['nftables', 'iptables']) {
    it(`passes every check and leaves nothing behind (${firewall})`, async () => {
      const r = await runDemo(['--check', '--firewall', firewall]);
      expect(r.out, r.out).toContain('All checks passed.');
      expect(r.code, r.out).toBe(0);
      for (const what of [
        'reserved address from the metadata: 192.168.122.10',
        'demo-vm resolves',
        'you are 203.0.113.2',
        'hello from demo-vm',
      ]) {
        expect(r.out).toContain(what);
      }
      expect(await netnsList()).not.toContain('vn-demo-');
    }, 200_000);
  }

  it('refuses a bad option with a usage error', async () => {
    const r = await runDemo(['--firewall', 'pf']);
    expect(r.code).toBe(2);
    expect(r.out).toContain('--firewall must be auto, nftables or iptables');
  });
});
