#!/usr/bin/env -S node --max-semi-space-size=1 --expose-gc
/**
 * virtnetd: the virtnet daemon. Parses the command line, builds the Linux engine and serves
 * org.virtnet.network1 until SIGTERM/SIGINT (networks stay up). See `virtnetd --help`.
 *
 * The shebang caps V8's young generation (--max-semi-space-size=1, MiB): a resident daemon that
 * allocates little gains nothing from the 16 MiB default semi-spaces, and they cost RSS (README,
 * Numbers: test/bench/dbus.bench.ts with and without the cap). --expose-gc
 * lets the daemon collect once when it goes idle after a change (src/daemon/idle-gc.ts). Run it as
 * `node --max-semi-space-size=1 --expose-gc …/virtnetd.js` when not executing the file directly.
 */
import { HELP, parseDaemonArgs } from '../daemon/args.js';
import { installSignals, StartupError, startDaemon } from '../daemon/main.js';
import { virtnetVersion } from '../daemon/version.js';
import { LinuxEngine } from '../engine/engine.js';
import { createLogger } from '../util/log.js';

async function run(): Promise<number> {
  const parsed = parseDaemonArgs(process.argv.slice(2));
  if (parsed.kind === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`virtnetd ${virtnetVersion()}\n`);
    return 0;
  }
  if (parsed.kind === 'usage-error') {
    process.stderr.write(`virtnetd: ${parsed.message}\nTry 'virtnetd --help'.\n`);
    return 2;
  }
  const opts = parsed.options;
  const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
  const signals = installSignals(log);
  try {
    const daemon = await startDaemon(opts, {
      log,
      createEngine: (o, l) =>
        LinuxEngine.create({
          runDir: o.runDir,
          firewall: o.firewall,
          logger: l,
          dnsmasqDbus: true,
          coexist: true,
          ...(o.frrVtySocket ? { frrVtysh: ['vtysh', '--vty_socket', o.frrVtySocket] } : {}),
        }),
    });
    await signals.attach(daemon);
    await daemon.done;
    process.exit(0);
  } catch (e) {
    const msg = e instanceof StartupError ? e.message : `startup failed: ${(e as Error)?.stack ?? String(e)}`;
    log.error(msg);
    return 1;
  }
}

run().then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (e) => {
    process.stderr.write(`virtnetd: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
