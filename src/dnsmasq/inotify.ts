/**
 * The inotify wall: every dnsmasq takes one inotify instance, charged to root (it creates it before it
 * drops to its own user), and the kernel allows `fs.inotify.max_user_instances` per user (128 unless
 * raised; the package raises it in /usr/lib/sysctl.d/60-virtnet.conf). A dnsmasq started past the limit
 * dies at once ("failed to create inotify"), so virtnetd checks the headroom before it starts one and
 * refuses with an error that names the limit, the count and the sysctl to raise.
 *
 * Counting means reading /proc: the inotify fds of root's processes and of every dnsmasq (which runs as
 * its own user but holds an instance charged to root), in this user namespace. That walk is only done
 * when the estimate (last count + instances started since) comes near the limit, so a host far from the
 * wall pays nothing per start.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Below this many free instances (by estimate) the next check counts for real. */
export const RECOUNT_MARGIN = 16;

export const INOTIFY_SYSCTL = 'fs.inotify.max_user_instances';

/** The effective limit: the global sysctl and this user namespace's own (the lower one counts). */
export async function readInotifyLimit(proc = '/proc'): Promise<number> {
  const read = async (p: string): Promise<number | undefined> => {
    try {
      const n = Number.parseInt((await readFile(`${proc}/${p}`, 'utf8')).trim(), 10);
      return Number.isFinite(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const vals = [
    await read('sys/fs/inotify/max_user_instances'),
    await read('sys/user/max_inotify_instances'),
  ];
  const known = vals.filter((v): v is number => v !== undefined);
  return known.length > 0 ? Math.min(...known) : Number.POSITIVE_INFINITY;
}

/** Whether a process's status/comm make its inotify instances root's (euid 0, or a dnsmasq). */
export function chargedToRoot(status: string, comm: string): boolean {
  const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  return comm.trim() === 'dnsmasq' || (uid !== null && uid[2] === '0');
}

/** Root's inotify instances in this user namespace, counted from /proc. */
export async function countRootInotify(proc = '/proc'): Promise<number> {
  let ourNs: string | undefined;
  try {
    ourNs = await readlink(`${proc}/self/ns/user`);
  } catch {
    ourNs = undefined;
  }
  let count = 0;
  const pids = (await readdir(proc)).filter((e) => /^\d+$/.test(e));
  await Promise.all(
    pids.map(async (pid) => {
      try {
        if (ourNs !== undefined && (await readlink(`${proc}/${pid}/ns/user`)) !== ourNs) return;
        const [status, comm] = await Promise.all([
          readFile(`${proc}/${pid}/status`, 'utf8'),
          readFile(`${proc}/${pid}/comm`, 'utf8'),
        ]);
        if (!chargedToRoot(status, comm)) return;
        const fds = await readdir(`${proc}/${pid}/fd`);
        for (const fd of fds) {
          try {
            if ((await readlink(`${proc}/${pid}/fd/${fd}`)) === 'anon_inode:inotify') count++;
          } catch {
            // the fd closed meanwhile
          }
        }
      } catch {
        // the process exited meanwhile, or is not ours to read
      }
    }),
  );
  return count;
}

/** The refusal text, or undefined when one more instance fits. Pure. */
export function inotifyRefusal(limit: number, used: number, network: string): string | undefined {
  if (used + 1 <= limit) return undefined;
  return (
    `network '${network}': no inotify instance left for its dnsmasq (${used} of ${INOTIFY_SYSCTL}=${limit} ` +
    `in use by root); raise it, e.g. sysctl -w ${INOTIFY_SYSCTL}=8192 (the package's ` +
    `/usr/lib/sysctl.d/60-virtnet.conf does at boot), then start the network again`
  );
}

export interface InotifySource {
  limit(): Promise<number>;
  count(): Promise<number>;
}

const procSource: InotifySource = { limit: () => readInotifyLimit(), count: () => countRootInotify() };

/** Headroom check before each dnsmasq start, recounting only near the limit. One per process. */
export class InotifyGuard {
  private lastCount: number | undefined;
  private since = 0;

  constructor(private readonly source: InotifySource = procSource) {}

  /** Throws an Error (one line) when the network's dnsmasq would not get an instance. */
  async check(network: string): Promise<void> {
    const limit = await this.source.limit();
    if (!Number.isFinite(limit)) return;
    if (this.lastCount === undefined || limit - (this.lastCount + this.since) <= RECOUNT_MARGIN) {
      this.lastCount = await this.source.count();
      this.since = 0;
    }
    const refusal = inotifyRefusal(limit, this.lastCount + this.since, network);
    if (refusal !== undefined) {
      this.lastCount = undefined; // count again next time: instances may have been freed
      throw new Error(refusal);
    }
    this.since++;
  }
}

/** The process-wide guard every supervisor uses unless given its own. */
export const sharedInotifyGuard = new InotifyGuard();
