/** Which firewalld zone a network's bridge goes into (src/firewall/firewalld.ts chooseZone). */
import { describe, expect, it } from 'vitest';
import { chooseZone } from '../../src/firewall/firewalld.js';
import type { Network } from '../../src/model/network.js';

function net(mode: Network['forward']['mode'], zone?: string): Network {
  return {
    name: 'n',
    uuid: '',
    forward: { mode, interfaces: [] },
    bridge: { name: 'virbr9', ...(zone ? { zone } : {}) },
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
  };
}

const DEBIAN = ['block', 'dmz', 'drop', 'external', 'home', 'internal', 'public', 'trusted', 'work'];

describe('chooseZone', () => {
  it("<bridge zone='…'/> wins when firewalld has it; a missing one is an error naming the field", () => {
    expect(chooseZone(net('nat', 'trusted'), [...DEBIAN, 'virtnet'])).toEqual({ zone: 'trusted' });
    expect(chooseZone(net('open', 'trusted'), DEBIAN)).toEqual({ zone: 'trusted' });
    const e = chooseZone(net('nat', 'nosuch'), DEBIAN);
    expect(e && 'error' in e && e.error).toMatch(
      /^network\/bridge@zone 'nosuch': firewalld has no such zone/,
    );
  });

  it('libvirt / libvirt-routed when present, else virtnet, else an error saying what to install', () => {
    const all = [...DEBIAN, 'libvirt', 'libvirt-routed', 'virtnet'];
    expect(chooseZone(net('nat'), all)).toEqual({ zone: 'libvirt' });
    expect(chooseZone(net('none'), all)).toEqual({ zone: 'libvirt' });
    expect(chooseZone(net('route'), all)).toEqual({ zone: 'libvirt-routed' });
    expect(chooseZone(net('route'), [...DEBIAN, 'libvirt', 'virtnet'])).toEqual({ zone: 'virtnet' });
    expect(chooseZone(net('nat'), [...DEBIAN, 'virtnet'])).toEqual({ zone: 'virtnet' });
    const e = chooseZone(net('nat'), DEBIAN);
    expect(e && 'error' in e && e.error).toMatch(/neither a 'libvirt' nor a 'virtnet' zone .*virtnet\.xml/);
  });

  it('bridge mode and open mode without a zone: none', () => {
    expect(chooseZone(net('bridge'), [...DEBIAN, 'virtnet'])).toBeUndefined();
    expect(chooseZone(net('open'), [...DEBIAN, 'virtnet'])).toBeUndefined();
  });
});
