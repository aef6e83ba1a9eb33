/**
 * The logger: winston with syslog levels (emerg … debug).
 *
 * - Under journald (`JOURNAL_STREAM` set) every line starts with the `<N>` syslog priority prefix
 *   (journald turns it into the entry's priority) and carries no timestamp (journald adds one).
 * - Otherwise readable lines: `2026-11-27T18:10:20.123Z info    message key=value`.
 * - `format: 'json'`: one JSON object per line (level, message, meta; a timestamp unless under journald).
 *
 * Lines go to stderr by default (journald captures it). Use `logger.child({ network: name })` to tag
 * a network's lines.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug';

/** Syslog priorities (RFC 5424), as winston's syslog levels. */
export const LOG_LEVELS: Record<LogLevel, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

export type Logger = winston.Logger;

export interface LoggerOptions {
  /** Most verbose level written (default 'info', or VIRTNET_LOG_LEVEL). */
  level?: LogLevel;
  format?: LogFormat;
  /** Default: true when JOURNAL_STREAM is set. */
  journald?: boolean;
  /** Where lines go (default process.stderr). */
  stream?: Writable;
}

export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(LOG_LEVELS, s);
}

/** Render meta fields as ` key=value` (values with spaces or quotes JSON-quoted). */
function renderMeta(info: Record<string | symbol, unknown>): string {
  let out = '';
  for (const [k, v] of Object.entries(info)) {
    if (k === 'level' || k === 'message' || k === 'timestamp') continue;
    if (v === undefined) continue;
    let s: string;
    if (v instanceof Error) s = v.message;
    else if (typeof v === 'string') s = v;
    else s = JSON.stringify(v) ?? String(v);
    if (s === '' || /[\s"=]/.test(s)) s = JSON.stringify(s);
    out += ` ${k}=${s}`;
  }
  return out;
}

function oneLine(s: string): string {
  return s.replace(/\r?\n/g, '\\n');
}

function lineFormat(journald: boolean, format: LogFormat): winston.Logform.Format {
  return winston.format.printf((info) => {
    const level = info.level as LogLevel;
    const prefix = journald ? `<${LOG_LEVELS[level] ?? 6}>` : '';
    const message = info.message instanceof Error ? info.message.message : String(info.message ?? '');
    if (format === 'json') {
      const obj: Record<string, unknown> = {};
      if (!journald && info.timestamp) obj.timestamp = info.timestamp;
      obj.level = level;
      obj.message = message;
      for (const [k, v] of Object.entries(info)) {
        if (k === 'level' || k === 'message' || k === 'timestamp') continue;
        obj[k] = v instanceof Error ? { name: v.name, message: v.message } : v;
      }
      return prefix + JSON.stringify(obj);
    }
    const head = journald ? '' : `${String(info.timestamp)} ${level.padEnd(7)} `;
    return oneLine(`${prefix}${head}${message}${renderMeta(info)}`);
  });
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const journald = opts.journald ?? Boolean(process.env.JOURNAL_STREAM);
  const format = opts.format ?? 'text';
  const envLevel = process.env.VIRTNET_LOG_LEVEL;
  const level = opts.level ?? (envLevel && isLogLevel(envLevel) ? envLevel : 'info');
  const stream = opts.stream ?? process.stderr;
  const formats: winston.Logform.Format[] = [];
  if (!journald) formats.push(winston.format.timestamp());
  formats.push(lineFormat(journald, format));
  const logger = winston.createLogger({
    levels: LOG_LEVELS,
    level,
    format: winston.format.combine(...formats),
    transports: [new winston.transports.Stream({ stream, eol: '\n' })],
    exitOnError: false,
  });
  return logger;
}

/** A logger that drops everything (default for library code and unit tests). */
export function silentLogger(): Logger {
  return winston.createLogger({
    levels: LOG_LEVELS,
    silent: true,
    transports: [new winston.transports.Console()],
  });
}
