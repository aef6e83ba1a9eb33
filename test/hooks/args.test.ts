import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { actionFor, blocksStart, DISPATCH, hookKindOfXml, parseHookArgs } from '../../src/hooks/args.js';
import { projectRoot } from '../helpers/shared.js';

describe('parseHookArgs', () => {
  it('accepts libvirt’s four arguments', () => {
    expect(parseHookArgs('qemu', ['golden-vm', 'prepare', 'begin', '-'])).toEqual({
      kind: 'qemu',
      object: 'golden-vm',
      operation: 'prepare',
      subOperation: 'begin',
      extra: '-',
    });
  });
  it.each([
    [[], /expected 4 arguments/],
    [['a', 'b', 'c'], /got 3/],
    [['a', 'b', 'c', 'd', 'e'], /got 5/],
    [['', 'start', 'begin', '-'], /object.*empty/],
    [['x\ny', 'start', 'begin', '-'], /control character/],
    [['a/b', 'start', 'begin', '-'], /'\/'/],
    [['vm', 'Start', 'begin', '-'], /operation/],
    [['vm', 'start', 'be gin', '-'], /sub-operation/],
    [['vm', 'start', 'begin', 'a\u0000'], /extra/],
  ])('rejects %j', (argv, re) => {
    expect(() => parseHookArgs('qemu', argv as string[])).toThrow(ValidationError);
    expect(() => parseHookArgs('qemu', argv as string[])).toThrow(re);
  });
});

describe('dispatch table', () => {
  it('acts on the domain and network operations virtnet cares about, ignores the rest', () => {
    for (const op of ['prepare', 'start', 'started', 'stopped', 'release', 'reconnect'])
      expect(actionFor('qemu', op)).toBe('handle');
    expect(actionFor('qemu', 'migrate')).toBe('passthrough');
    expect(actionFor('qemu', 'restore')).toBe('passthrough');
    for (const op of ['attach', 'shutdown', 'toString', '__proto__', 'port-created'])
      expect(actionFor('qemu', op)).toBe('ignore');
    for (const op of ['start', 'started', 'stopped', 'port-created', 'port-deleted', 'updated'])
      expect(actionFor('network', op)).toBe('handle');
    expect(actionFor('network', 'prepare')).toBe('ignore');
  });
  it('only qemu prepare/start can stop a domain', () => {
    expect(blocksStart('qemu', 'prepare')).toBe(true);
    expect(blocksStart('qemu', 'start')).toBe(true);
    expect(blocksStart('qemu', 'started')).toBe(false);
    expect(blocksStart('network', 'start')).toBe(false);
  });
  it('the shell hook’s case list mirrors the table', () => {
    const script = readFileSync(join(projectRoot, 'hooks', 'qemu'), 'utf8');
    expect(readFileSync(join(projectRoot, 'hooks', 'network'), 'utf8')).toBe(script);
    const m = /case "\$virtnet_hook:\$2" in\n([\s\S]*?)esac/.exec(script);
    expect(m).toBeTruthy();
    const seen: Record<string, string> = {};
    for (const line of m![1]!.split('\n').filter((l) => l.includes(')') && !l.includes('*)'))) {
      const [pats, body] = [line.slice(0, line.indexOf(')')), line.slice(line.indexOf(')') + 1)];
      const action = body.includes('exec cat') ? 'passthrough' : 'handle';
      for (const p of pats.split('|').map((x) => x.trim())) seen[p] = action;
    }
    const expected: Record<string, string> = {};
    for (const kind of ['qemu', 'network'] as const)
      for (const [op, a] of Object.entries(DISPATCH[kind])) if (a !== 'ignore') expected[`${kind}:${op}`] = a;
    expect(seen).toEqual(expected);
  });
});

describe('hookKindOfXml', () => {
  it('tells a domain from hookData', () => {
    expect(hookKindOfXml("<domain type='qemu'><name>x</name></domain>")).toBe('qemu');
    expect(hookKindOfXml('<?xml version="1.0"?>\n<!-- c -->\n<hookData><network/></hookData>')).toBe(
      'network',
    );
    expect(hookKindOfXml('<network/>')).toBeUndefined();
    expect(hookKindOfXml('')).toBeUndefined();
  });
});
