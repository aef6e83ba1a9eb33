/**
 * The unit's SystemCallFilter, expanded by systemd itself (`systemd-analyze syscall-filter`), allows
 * the system calls Node needs before it runs any code: V8 calls pkey_alloc at start, and a filter
 * without it kills the daemon with SIGSYS. The booted-system check runs the real daemon under the unit.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(['systemd-analyze']);

/** Every system call a `SystemCallFilter=` allow-list of groups and names expands to. */
function allowed(groups: string[], out = new Set<string>(), seen = new Set<string>()): Set<string> {
  for (const g of groups) {
    if (!g.startsWith('@')) {
      out.add(g);
      continue;
    }
    if (seen.has(g)) continue;
    seen.add(g);
    const text = execFileSync('systemd-analyze', ['syscall-filter', g], { encoding: 'utf8' });
    // Group members are listed one a line; nested groups (@basic-io …) are expanded in turn.
    const members = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && l !== g);
    allowed(members, out, seen);
  }
  return out;
}

describe.skipIf(skip)('virtnetd.service SystemCallFilter', () => {
  it('allows the memory-protection-key calls Node makes at start', () => {
    const unit = readFileSync(join(projectRoot, 'packaging/virtnetd.service'), 'utf8');
    const lines = unit.split('\n').filter((l) => l.startsWith('SystemCallFilter='));
    expect(lines.length).toBeGreaterThan(0);
    // Only allow-lists here: a deny-list (leading ~) would need the opposite check.
    for (const l of lines) expect(l.slice('SystemCallFilter='.length).startsWith('~')).toBe(false);
    const groups = lines.flatMap((l) => l.slice('SystemCallFilter='.length).trim().split(/\s+/));
    const set = allowed(groups);
    for (const call of ['pkey_alloc', 'pkey_free', 'pkey_mprotect', 'mmap', 'clone3']) {
      expect(set.has(call), `${call} allowed by ${groups.join(' ')}`).toBe(true);
    }
  });
});
