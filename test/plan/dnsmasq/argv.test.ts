import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import { dnsmasqArgv } from '../../../src/plan/dnsmasq.js';

const base = {
  confFile: '/run/virtnet/dnsmasq/default.conf',
  pidFile: '/run/virtnet/dnsmasq/default.pid',
  leaseFile: '/var/lib/virtnet/dnsmasq/default.leases',
};

describe('dnsmasqArgv', () => {
  it('conf file first, runtime-only options on the command line, daemonizing by default', () => {
    expect(dnsmasqArgv(base)).toEqual([
      'dnsmasq',
      '--conf-file=/run/virtnet/dnsmasq/default.conf',
      '--pid-file=/run/virtnet/dnsmasq/default.pid',
      '--dhcp-leasefile=/var/lib/virtnet/dnsmasq/default.leases',
    ]);
  });

  it('optional D-Bus name, user, binary and foreground mode', () => {
    expect(
      dnsmasqArgv({
        ...base,
        binary: '/usr/sbin/dnsmasq',
        dbusName: 'uk.org.thekelleys.dnsmasq.virbr0',
        user: 'dnsmasq',
        foreground: true,
      }),
    ).toEqual([
      '/usr/sbin/dnsmasq',
      '--conf-file=/run/virtnet/dnsmasq/default.conf',
      '--pid-file=/run/virtnet/dnsmasq/default.pid',
      '--dhcp-leasefile=/var/lib/virtnet/dnsmasq/default.leases',
      '--enable-dbus=uk.org.thekelleys.dnsmasq.virbr0',
      '--user=dnsmasq',
      '--keep-in-foreground',
    ]);
  });

  it("never emits libvirt's leases-helper options", () => {
    const argv = dnsmasqArgv({ ...base, foreground: false });
    expect(argv.some((a) => a.startsWith('--dhcp-script') || a === '--leasefile-ro')).toBe(false);
    expect(argv).not.toContain('--keep-in-foreground');
  });

  it('checks every value', () => {
    const bad: Partial<Parameters<typeof dnsmasqArgv>[0]>[] = [
      { confFile: 'relative.conf' },
      { pidFile: '/run/x\n.pid' },
      { leaseFile: '' },
      { dbusName: 'nodots' },
      { dbusName: 'a.b --port=53' },
      { user: 'root --port=53' },
      { binary: '--help' },
    ];
    for (const b of bad)
      expect(() => dnsmasqArgv({ ...base, ...b }), JSON.stringify(b)).toThrow(ValidationError);
  });
});
