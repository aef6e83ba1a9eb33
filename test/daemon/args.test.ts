import { describe, expect, it } from 'vitest';
import { DEFAULTS, HELP, parseDaemonArgs } from '../../src/daemon/args.js';

describe('virtnetd command line', () => {
  it('defaults', () => {
    expect(parseDaemonArgs([])).toEqual({ kind: 'run', options: DEFAULTS });
    expect(DEFAULTS).toMatchObject({
      configDir: '/etc/virtnet/networks',
      stateDir: '/var/lib/virtnet',
      runDir: '/run/virtnet',
      bus: 'system',
      firewall: 'auto',
      onFileRemoved: 'keep-running',
    });
  });

  it('every option, both spellings', () => {
    const r = parseDaemonArgs([
      '--config-dir',
      '/c',
      '--state-dir=/s',
      '--run-dir',
      '/r',
      '--bus',
      'unix:path=/tmp/b',
      '--firewall=iptables',
      '--log-level',
      'debug',
      '--log-format',
      'json',
      '--on-file-removed=stop',
      '--libvirt',
      'qemu+unix:///system?socket=/x/libvirt-sock',
      '--libvirt-status-dir=/x/lib/dnsmasq',
      '--frr-vty-socket',
      '/x/frr',
    ]);
    expect(r).toEqual({
      kind: 'run',
      options: {
        configDir: '/c',
        stateDir: '/s',
        runDir: '/r',
        bus: 'unix:path=/tmp/b',
        firewall: 'iptables',
        logLevel: 'debug',
        logFormat: 'json',
        onFileRemoved: 'stop',
        libvirt: 'qemu+unix:///system?socket=/x/libvirt-sock',
        libvirtStatusDir: '/x/lib/dnsmasq',
        frrVtySocket: '/x/frr',
      },
    });
  });

  it('help and version', () => {
    expect(parseDaemonArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseDaemonArgs(['-V'])).toEqual({ kind: 'version' });
    for (const o of [
      '--config-dir',
      '--state-dir',
      '--run-dir',
      '--bus',
      '--firewall',
      '--log-level',
      '--on-file-removed',
      '--libvirt',
      '--libvirt-status-dir',
      '--frr-vty-socket',
    ]) {
      expect(HELP).toContain(o);
    }
  });

  it.each([
    [['--bogus'], "unknown option '--bogus'"],
    [['--config-dir'], '--config-dir needs a value'],
    [['--frr-vty-socket'], '--frr-vty-socket needs a value'],
    [['--firewall', 'ebtables'], '--firewall expects auto, nftables or iptables'],
    [['--log-level', 'loud'], '--log-level expects'],
    [['--bus', 'session'], "--bus expects 'system' or a D-Bus address"],
    [['--config-dir', '--bus'], '--config-dir needs a value'],
    [['--on-file-removed', 'delete'], '--on-file-removed expects keep-running or stop'],
    [
      ['--libvirt', 'default'],
      "--libvirt expects a libvirt URI such as qemu:///system, or none (got 'default')",
    ],
  ])('%j is a usage error', (argv, msg) => {
    const r = parseDaemonArgs(argv);
    expect(r.kind).toBe('usage-error');
    expect(r.kind === 'usage-error' && r.message).toContain(msg);
  });
});
