import { describe, expect, it } from 'vitest';
import { remoteMacsFromFdb, type SpanState, spanPeerLine, spanPeersOf } from '../../src/engine/span.js';

const SPAN: SpanState = {
  mode: 'vxlan',
  vni: 10100,
  role: 'member',
  gateway: '192.0.2.11',
  local: '192.0.2.12',
  remotes: ['192.0.2.11', '192.0.2.13'],
  port: 'vx10100',
};

describe('span peers (pure)', () => {
  it('reads the MACs behind each remote from `bridge -j fdb show dev PORT` (flood and local entries left out)', () => {
    // The shape iproute2 6.1 prints: learned entries, zebra's (extern_learn), flood entries, the port's own.
    const fdb = JSON.stringify([
      { mac: '52:54:00:aa:10:03', dst: '192.0.2.13', flags: [], state: '' },
      { mac: '52:54:00:aa:10:01', dst: '192.0.2.11', flags: ['extern_learn'], state: '' },
      { mac: '52:54:00:5a:10:01', dst: '192.0.2.11', flags: [], state: '' },
      { mac: '00:00:00:00:00:00', dst: '192.0.2.11', flags: ['self'], state: 'permanent' },
      { mac: '00:00:00:00:00:00', dst: '192.0.2.13', flags: ['self'], state: 'permanent' },
      { mac: '7a:11:22:33:44:55', ifname: 'vx10100', master: 'vsp0', state: 'permanent' },
    ]);
    const macs = remoteMacsFromFdb(fdb);
    expect(Object.fromEntries(macs)).toEqual({
      '192.0.2.11': ['52:54:00:5a:10:01', '52:54:00:aa:10:01'],
      '192.0.2.13': ['52:54:00:aa:10:03'],
    });
    expect(remoteMacsFromFdb('')).toEqual(new Map());
    const peers = spanPeersOf(SPAN, macs, (a) => (a === '192.0.2.13' ? 'unreachable' : 'reachable'));
    expect(peers).toEqual([
      {
        address: '192.0.2.11',
        role: 'gateway',
        state: 'reachable',
        macs: ['52:54:00:5a:10:01', '52:54:00:aa:10:01'],
      },
      { address: '192.0.2.13', role: 'member', state: 'unreachable', macs: ['52:54:00:aa:10:03'] },
    ]);
    expect(peers.map(spanPeerLine)).toEqual([
      '192.0.2.11 gateway reachable, 2 MACs: 52:54:00:5a:10:01 52:54:00:aa:10:01',
      '192.0.2.13 member unreachable, 1 MAC: 52:54:00:aa:10:03',
    ]);
    expect(spanPeerLine({ address: '192.0.2.13', role: 'member', state: 'unknown', macs: [] })).toBe(
      '192.0.2.13 member unknown, no MACs',
    );
  });
});
