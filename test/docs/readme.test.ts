/**
 * The README stays true to the code: its CLI table names every virtnetctl command of the registry
 * with its synopsis, its bus table names every method, property and signal of the interface XML in
 * dbus/, the polkit action ids it names exist, and its install table names every path
 * packaging/install.sh documents (PREFIX=/usr, SYSCONFDIR=/etc).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { projectRoot } from '../helpers/shared.js';

const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
const read = (p: string) => readFileSync(join(projectRoot, p), 'utf8');

describe('README', () => {
  it('lists every virtnetctl command with its synopsis', () => {
    for (const c of commands) {
      const head = `| \`virtnetctl ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`;
      expect(readme, head).toContain(head);
      for (const o of Object.keys(c.options)) {
        if (o === 'bus') continue; // said once for all bus commands
        const row = readme.split('\n').find((l) => l.startsWith(head));
        expect(row, `${c.name} --${o}`).toContain(`--${o}`);
      }
    }
    expect(readme).toMatch(/takes `--bus system\|ADDRESS`/);
  });

  it('documents every member of the bus interfaces', () => {
    for (const f of ['dbus/org.virtnet.network1.Manager.xml', 'dbus/org.virtnet.network1.Network.xml']) {
      const xml = read(f);
      const iface = /<interface name="([^"]+)"/.exec(xml)![1]!;
      expect(readme).toContain(`\`${iface}\``);
      for (const [, kind, name] of xml.matchAll(/<(method|property|signal) name="([^"]+)"/g))
        expect(readme, `${kind} ${name}`).toMatch(new RegExp(`^\\| ${kind} \`${name}\` +\\|`, 'm'));
    }
  });

  it('names only polkit actions that exist, and both of them', () => {
    const policy = read('dbus/org.virtnet.network1.policy');
    const ids = [...policy.matchAll(/<action id="([^"]+)"/g)].map((m) => m[1]!);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    for (const id of ids) expect(readme).toContain(id);
    for (const [m] of readme.matchAll(/org\.virtnet\.network1\.(read|manage-[a-z-]+)\b/g))
      expect(ids).toContain(m);
  });

  it("install table: every path install.sh's header documents", () => {
    const header = read('packaging/install.sh')
      .split('\n')
      .filter((l) => /^# {3}(PREFIX|SYSCONFDIR)\//.test(l));
    expect(header.length).toBeGreaterThan(5);
    for (const l of header) {
      const path = l
        .slice(4)
        .split(/\s+/)[0]!
        .replace(/^PREFIX/, '/usr')
        .replace(/^SYSCONFDIR/, '/etc')
        .replace(/,$/, '');
      // Brace forms in the README ({Manager,Network}, {qemu,network}) count as listing the path.
      const stem = path.replace(/\*.*$/, '').replace(/\/$/, '');
      expect(readme, path).toContain(stem);
    }
    expect(readme).toContain('systemctl enable --now virtnetd');
    expect(readme).toContain('apt install ./virtnet_*.deb');
  });
});
