import { describe, expect, it } from 'vitest';
import { checkDefineXml, checkHookArgs, checkHostArgs } from '../../src/daemon/call-args.js';
import { ValidationError } from '../../src/errors.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { checkMac } from '../../src/model/validators.js';

const net = parseNetworkXml(`<network><name>n</name><forward mode='nat'/>
  <ip address='192.168.50.1' prefix='24'/><ip family='ipv6' address='fd00:50::1' prefix='64'/></network>`).network;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => `${p.path}: ${p.reason}`);
    throw e;
  }
  return [];
}

describe('bus call arguments', () => {
  it('AddHost: valid combinations, canonical forms', () => {
    expect(checkHostArgs(net, '52:54:00:AA:BB:CC', '192.168.50.9', 'web')).toEqual({
      mac: '52:54:00:aa:bb:cc',
      ip: '192.168.50.9',
      hostname: 'web',
    });
    expect(checkHostArgs(net, '52:54:00:aa:bb:cc', 'fd00:50:0::9', '')).toEqual({
      mac: '52:54:00:aa:bb:cc',
      ip: 'fd00:50::9',
    });
    expect(checkHostArgs(net, '52:54:00:aa:bb:cc', '', 'only-name')).toEqual({
      mac: '52:54:00:aa:bb:cc',
      hostname: 'only-name',
    });
  });

  it.each([
    [['nope', '192.168.50.9', 'a'], 'mac: not a MAC address'],
    [['01:00:5e:00:00:01', '192.168.50.9', 'a'], 'mac: expected a unicast MAC'],
    [['52:54:00:aa:bb:cc', '10.0.0.1', 'a'], "ip: outside the network's IPv4 subnet(s) 192.168.50.1/24"],
    [['52:54:00:aa:bb:cc', '192.168.50.1', 'a'], "ip: is the network's own (host side) address"],
    [['52:54:00:aa:bb:cc', 'x.y', 'a'], 'ip: not an IP address'],
    [['52:54:00:aa:bb:cc', '192.168.50.9', 'bad name!'], 'hostname: host name labels may contain only'],
    [['52:54:00:aa:bb:cc', '', ''], 'ip: give an IP address, a host name or both'],
  ])('AddHost%j → %s', (args, msg) => {
    const [mac, ip, host] = args as [string, string, string];
    expect(problems(() => checkHostArgs(net, mac, ip, host)).join('; ')).toContain(msg);
  });

  it('1 MB strings are rejected without echoing them whole', () => {
    const big = 'a'.repeat(1024 * 1024);
    for (const fn of [
      () => checkHostArgs(net, big, '', 'h'),
      () => checkHostArgs(net, '52:54:00:aa:bb:cc', '', big),
      () => checkMac(big),
      () => checkDefineXml(big),
      () => checkHookArgs('qemu', 'start', big, '-', ''),
    ]) {
      try {
        fn();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        expect((e as Error).message.length).toBeLessThan(400);
      }
    }
  });

  it('HookEvent arguments: one-line sub_operation/extra, bounded sizes', () => {
    expect(problems(() => checkHookArgs('vm1', 'Start', 'a\nb', '-', '<domain/>'))).toEqual([
      'operation: expected a libvirt hook operation word',
      'sub_operation: must not contain a newline',
    ]);
    expect(problems(() => checkHookArgs('vm1', 'start', 'begin', 'x'.repeat(300), '<domain/>'))).toEqual([
      'extra: longer than 256 characters',
    ]);
  });
});
