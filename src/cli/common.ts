/**
 * What the bus commands share — `--bus`, `--json`, table/JSON output and withClient() — without
 * loading the D-Bus library: bus-client.ts (dbus-next, which loads xml2js and xmlbuilder) is
 * imported by withClient() on first use, so `--help`, `--version` and the offline commands never pay
 * for it, and the bus commands never load the model and planner.
 */
import type { VirtnetClient } from './bus-client.js';
import type { CommandContext, OptionSpec } from './command.js';

/** `--bus ADDRESS`: every bus command takes it. */
export const BUS_OPTION: Record<string, OptionSpec> = {
  bus: {
    type: 'string',
    valueName: 'ADDRESS',
    description:
      "the bus virtnetd serves on: 'system' or a D-Bus address (default: DBUS_SYSTEM_BUS_ADDRESS, else the system bus)",
  },
};

/** `--json`: machine-readable output. */
export const JSON_OPTION: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print JSON instead of a table' },
};

/** The client class, loaded on first use. */
export async function clientClass(): Promise<typeof VirtnetClient> {
  return (await import('./bus-client.js')).VirtnetClient;
}

/** Connect, run `fn`, disconnect. */
export async function withClient<T>(ctx: CommandContext, fn: (c: VirtnetClient) => Promise<T>): Promise<T> {
  const bus = typeof ctx.options.bus === 'string' ? ctx.options.bus : undefined;
  const client = await (await clientClass()).connect(ctx.io.env, bus);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Left-aligned columns with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
