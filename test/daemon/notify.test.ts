import { describe, expect, it } from 'vitest';
import { createNotifier } from '../../src/daemon/notify.js';

describe('sd_notify through systemd-notify', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const calls: string[][] = [];
    const n = createNotifier({}, async (a) => {
      calls.push(a);
    });
    await n.ready();
    expect(n.startWatchdog()).toBe(0);
    expect(calls).toEqual([]);
  });

  it('READY=1 with our pid, watchdog at half the period, STOPPING=1', async () => {
    const calls: string[][] = [];
    const n = createNotifier({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '400000' }, async (a) => {
      calls.push(a);
    });
    await n.ready('serving');
    expect(calls[0]).toEqual([`--pid=${process.pid}`, '--ready', '--status=serving']);
    expect(n.startWatchdog()).toBe(200);
    await new Promise((r) => setTimeout(r, 450));
    n.close();
    const pings = calls.filter((c) => c.includes('WATCHDOG=1')).length;
    expect(pings).toBeGreaterThanOrEqual(1);
    await n.stopping();
    expect(calls.at(-1)).toEqual([`--pid=${process.pid}`, 'STOPPING=1']);
  });

  it('ignores a watchdog meant for another pid; reports send failures', async () => {
    const errors: string[] = [];
    const n = createNotifier(
      { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' },
      async () => {
        throw new Error('no socket');
      },
      (e) => errors.push(e.message),
    );
    expect(n.startWatchdog()).toBe(0);
    await n.ready();
    expect(errors).toEqual(['no socket']);
  });
});
