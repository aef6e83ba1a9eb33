/**
 * The ruleset watcher's scheduling (src/firewall/watch.ts), with a stand-in for `nft monitor` (a shell
 * printing lines): notifications are debounced into one check, checks never overlap (a change during
 * a check gives exactly one more), and a monitor that exits is reported and started again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RulesetWatcher } from '../../src/firewall/watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RulesetWatcher', () => {
  let w: RulesetWatcher | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('a burst of notifications is one check; a change during a check is one more, never two at a time', async () => {
    let running = 0;
    let overlap = false;
    const whys: string[] = [];
    w = new RulesetWatcher({
      argv: [
        'sh',
        '-c',
        'for i in 1 2 3 4 5 6 7 8; do echo "add rule $i"; done; sleep 0.3; echo late; exec sleep 30',
      ],
      onChange: async (why) => {
        running++;
        if (running > 1) overlap = true;
        whys.push(why);
        await sleep(100);
        running--;
      },
      legacyPollMs: 60_000,
    });
    w.start();
    await sleep(250);
    expect(whys).toEqual(['nftables ruleset changed']);
    // Kicks while nothing runs and while a check runs: still one at a time.
    w.kick('asked');
    await sleep(20);
    w.kick('asked again');
    w.kick('asked a third time');
    await sleep(500);
    expect(overlap).toBe(false);
    // burst → 1; the "late" line and the asks → at most one check each time one was running.
    expect(whys.length).toBeGreaterThanOrEqual(3);
    expect(whys.length).toBeLessThanOrEqual(4);
  });

  it('a monitor that exits is reported and restarted, and a check follows', async () => {
    const trouble: string[] = [];
    let checks = 0;
    w = new RulesetWatcher({
      argv: ['sh', '-c', 'exit 3'],
      onChange: async () => {
        checks++;
      },
      onTrouble: (m) => trouble.push(m),
      legacyPollMs: 60_000,
    });
    w.start();
    await sleep(1300);
    expect(trouble.filter((t) => t === 'nft monitor exited (3); restarting').length).toBeGreaterThanOrEqual(
      2,
    );
    expect(checks).toBeGreaterThanOrEqual(1);
  });
});
