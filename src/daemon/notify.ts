/**
 * sd_notify for a Node process. Node has no unix datagram sockets, so the notification is sent by
 * `systemd-notify` (systemd's own client) as a child process: `systemd-notify --ready` when the daemon
 * is ready, `systemd-notify WATCHDOG=1` every half watchdog period when systemd asked for a watchdog
 * (WATCHDOG_USEC, and WATCHDOG_PID naming us or absent), `STOPPING=1` at shutdown. Because the sender
 * is a child, the unit needs `NotifyAccess=all` (packaging/virtnetd.service has it); `--pid` names the
 * daemon so systemd records the right main pid. Nothing happens when NOTIFY_SOCKET is unset.
 */
import { execFile } from 'node:child_process';

export interface Notifier {
  ready(status?: string): Promise<void>;
  stopping(): Promise<void>;
  /** Start the watchdog pings if systemd asked for them; returns the interval in ms (0 = none). */
  startWatchdog(): number;
  close(): void;
}

export type NotifyRunner = (args: string[]) => Promise<void>;

const defaultRunner: NotifyRunner = (args) =>
  new Promise((resolve, reject) => {
    execFile('systemd-notify', args, { timeout: 5000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`systemd-notify ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });

export function createNotifier(
  env: NodeJS.ProcessEnv = process.env,
  run: NotifyRunner = defaultRunner,
  onError: (e: Error) => void = () => {},
): Notifier {
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const pid = process.pid;
  let timer: NodeJS.Timeout | undefined;
  const send = async (args: string[]) => {
    if (!enabled) return;
    try {
      await run([`--pid=${pid}`, ...args]);
    } catch (e) {
      onError(e as Error);
    }
  };
  return {
    ready: (status) => send(['--ready', ...(status ? [`--status=${status}`] : [])]),
    stopping: () => send(['STOPPING=1']),
    startWatchdog() {
      if (!enabled) return 0;
      const usec = Number(env.WATCHDOG_USEC);
      if (!Number.isFinite(usec) || usec <= 0) return 0;
      if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return 0;
      const ms = Math.max(100, Math.floor(usec / 2000));
      timer = setInterval(() => void send(['WATCHDOG=1']), ms);
      timer.unref();
      return ms;
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
