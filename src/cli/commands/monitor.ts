/** `virtnetctl monitor [NAME]`: print the daemon's signals as they come. */
import type { DaemonSignal } from '../bus-client.js';
import type { Command } from '../command.js';
import { BUS_OPTION, clientClass, JSON_OPTION } from '../common.js';
import { ExitCode, UsageError } from '../exit-codes.js';

/** One human line for a signal. */
export function describeSignal(s: DaemonSignal): string {
  const a = s.args.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  const net = s.network ?? '?';
  switch (s.member) {
    case 'NetworkEvent':
      return `network ${a[0]} ${a[2]}`;
    case 'PropertiesChanged': {
      const changed = (s.args[1] ?? {}) as Record<string, unknown>;
      const kv = Object.entries(changed).map(
        ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
      );
      return `network ${net} changed ${kv.join(' ')}`;
    }
    case 'LeaseChanged':
      return `lease ${net} ${a[0]} ${a[1]} ${a[2]}${a[3] ? ` ${a[3]}` : ''}`;
    case 'PortAttached':
      return `port ${net} attached ${a[0]} ${a[1]}${a[2] ? ` domain ${a[2]}` : ''}`;
    case 'PortDetached':
      return `port ${net} detached ${a[0]}${a[1] ? ` domain ${a[1]}` : ''}`;
    case 'InterfacesAdded':
      return `object ${net} added ${a[0]}`;
    case 'InterfacesRemoved':
      return `object ${net} removed ${a[0]}`;
    default:
      return `${s.interface}.${s.member} ${s.path} ${a.join(' ')}`;
  }
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: "Print virtnetd's events as they happen",
  synopsis: '[NAME]',
  description: `Subscribes to every signal of org.virtnet.network1 and prints one line per event: network
lifecycle (defined, undefined, started, stopped, updated), property changes, DHCP leases, ports attached
and detached. With NAME, only that network's events. Runs until interrupted (Ctrl-C), or until --count
events were printed. --json prints one JSON object per line.`,
  options: {
    ...JSON_OPTION,
    count: { type: 'string', valueName: 'N', description: 'exit after N events' },
    ...BUS_OPTION,
  },
  examples: ['monitor', 'monitor default', 'monitor --json --count 1'],
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    let left = Number.POSITIVE_INFINITY;
    if (typeof ctx.options.count === 'string') {
      left = Number(ctx.options.count);
      if (!Number.isInteger(left) || left < 1)
        throw new UsageError(`--count expects a positive integer (got '${ctx.options.count}')`);
    }
    const only = ctx.args[0];
    const bus = typeof ctx.options.bus === 'string' ? ctx.options.bus : undefined;
    const client = await (await clientClass()).connect(ctx.io.env, bus);
    let finish!: () => void;
    const finished = new Promise<void>((r) => {
      finish = r;
    });
    const sub = await client.subscribe((s) => {
      if (left <= 0) return;
      if (only !== undefined && s.network !== only) return;
      ctx.io.stdout(
        ctx.options.json
          ? `${JSON.stringify({ time: new Date().toISOString(), ...s })}\n`
          : `${new Date().toISOString()} ${describeSignal(s)}\n`,
      );
      left--;
      if (left <= 0) finish();
    });
    const onSig = () => finish();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    ctx.io.stderr(
      `Monitoring ${only ? `network ${only}` : 'all networks'} on ${client.address} (Ctrl-C to stop)\n`,
    );
    await finished;
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    await sub.stop();
    client.close();
    return ExitCode.OK;
  },
};
