/**
 * `p`, or — when `ms` run out first — what `late()` gives: its value, or its throw as the rejection.
 * The timer is cleared either way, so nothing keeps the process alive after `p` settles. For calls
 * whose promise may never settle (dbus-next on a lost connection, a bus activation that hangs).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (e) {
        reject(e);
      }
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
