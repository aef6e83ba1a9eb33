import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createLogger,
  isLogLevel,
  LOG_LEVELS,
  type LoggerOptions,
  silentLogger,
} from '../../src/util/log.js';

function capture(opts: Omit<LoggerOptions, 'stream'>) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d.toString()));
  const logger = createLogger({ ...opts, stream });
  const lines = async () => {
    await new Promise((r) => setImmediate(r));
    return chunks.join('').split('\n').filter(Boolean);
  };
  return { logger, lines };
}

describe('createLogger', () => {
  it('uses the syslog levels with their priorities', () => {
    expect(LOG_LEVELS).toEqual({
      emerg: 0,
      alert: 1,
      crit: 2,
      error: 3,
      warning: 4,
      notice: 5,
      info: 6,
      debug: 7,
    });
    expect(isLogLevel('warning')).toBe(true);
    expect(isLogLevel('warn')).toBe(false);
  });

  it('journald: <N> prefix, no timestamp, meta as key=value', async () => {
    const { logger, lines } = capture({ journald: true });
    logger.info('dnsmasq started', { network: 'default', pid: 42 });
    logger.error('firewall failed', { stderr: 'Error: no such table' });
    logger.warning('w');
    logger.debug('hidden at info');
    expect(await lines()).toEqual([
      '<6>dnsmasq started network=default pid=42',
      '<3>firewall failed stderr="Error: no such table"',
      '<4>w',
    ]);
  });

  it('JOURNAL_STREAM in the environment selects journald mode', async () => {
    const old = process.env.JOURNAL_STREAM;
    process.env.JOURNAL_STREAM = '8:1234';
    try {
      const { logger, lines } = capture({});
      logger.notice('hello');
      expect(await lines()).toEqual(['<5>hello']);
    } finally {
      if (old === undefined) delete process.env.JOURNAL_STREAM;
      else process.env.JOURNAL_STREAM = old;
    }
  });

  it('text: readable lines with an ISO time and the level, one line per message', async () => {
    const { logger, lines } = capture({ journald: false, level: 'debug' });
    logger.debug('two\nlines', { bridge: 'virbr0' });
    const [line] = await lines();
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z debug {3}two\\nlines bridge=virbr0$/);
  });

  it('json: one object per line with level, message and meta; child meta included', async () => {
    const { logger, lines } = capture({ journald: false, format: 'json' });
    logger.child({ network: 'n1' }).info('started', { ms: 12 });
    const out = await lines();
    expect(out).toHaveLength(1);
    const obj = JSON.parse(out[0]!);
    expect(obj).toMatchObject({ level: 'info', message: 'started', network: 'n1', ms: 12 });
    expect(typeof obj.timestamp).toBe('string');
  });

  it('json under journald: prefixed, no timestamp', async () => {
    const { logger, lines } = capture({ journald: true, format: 'json' });
    logger.crit('boom', { err: new Error('bad') });
    const [line] = await lines();
    expect(line!.startsWith('<2>{')).toBe(true);
    const obj = JSON.parse(line!.slice(3));
    expect(obj.timestamp).toBeUndefined();
    expect(obj.err).toEqual({ name: 'Error', message: 'bad' });
  });

  it('level filters: at warning, info is dropped', async () => {
    const { logger, lines } = capture({ journald: true, level: 'warning' });
    logger.info('no');
    logger.warning('yes');
    expect(await lines()).toEqual(['<4>yes']);
  });

  it('silentLogger writes nothing and accepts all levels', () => {
    const l = silentLogger();
    expect(() => l.emerg('x')).not.toThrow();
  });
});
