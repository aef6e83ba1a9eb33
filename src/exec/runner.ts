/**
 * Running host commands. Every command virtnet runs goes through a `CommandRunner`: argv arrays only,
 * never a shell, so no value from a network definition can become shell syntax.
 *
 * Two implementations, both obtained through `createRunner`:
 * - 'host' (`SpawnRunner`): runs the command for real (node:child_process, no shell). The daemon, the
 *   engine, the dnsmasq supervisor and the hooks' in-process fallback all use this one.
 * - 'dry-run' (`DryRunRunner`): records every call and answers from canned results (like libvirt's
 *   virCommandSetDryRun), for `plan`-style previews and unit tests of the engine and drivers.
 *
 * Namespaces: a request may name a `netns`; the real runner then runs `ip netns exec NAME argv…`.
 * The engine itself never sets it: in tests the whole engine process is spawned inside the test's
 * "host" namespace (so dnsmasq, sysctl files under /proc/sys and /sys/class/net are that namespace's
 * too). `netns` exists for test harnesses and tools that drive several namespaces from one process.
 */
import { spawn } from 'node:child_process';
import { CommandError } from '../errors.js';

export interface RunRequest {
  /** What this command is for, e.g. "links: create bridge virbr0" — named in errors. */
  step: string;
  argv: readonly string[];
  /** Written to the command's stdin. */
  input?: string;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** When true a non-zero exit is returned instead of thrown. */
  allowFail?: boolean;
  /** Milliseconds before the command is killed (default 30 s). */
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(req: RunRequest): Promise<RunResult>;
}

/** The argv actually executed for a request (with the netns prefix when asked). */
export function effectiveArgv(req: RunRequest): string[] {
  if (req.argv.length === 0) throw new Error(`${req.step}: empty argv`);
  return req.netns ? ['ip', 'netns', 'exec', req.netns, ...req.argv] : [...req.argv];
}

/**
 * Runs commands for real on `node:child_process.spawn` (no shell): a plain spawn costs the event loop
 * the least per command, which matters when many networks start side by side.
 */
export class SpawnRunner implements CommandRunner {
  run(req: RunRequest): Promise<RunResult> {
    const argv = effectiveArgv(req);
    const [file, ...args] = argv as [string, ...string[]];
    return new Promise((resolve, reject) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(file, args, {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, LC_ALL: 'C' },
          timeout: req.timeoutMs ?? 30_000,
          killSignal: 'SIGKILL',
        });
      } catch (e) {
        reject(new CommandError(req.step, argv, undefined, (e as Error).message));
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => err.push(d));
      let spawnError: Error | undefined;
      child.on('error', (e) => {
        spawnError = e;
      });
      // EPIPE when the command does not read its stdin is not our failure; its exit code tells.
      child.stdin!.on('error', () => {});
      child.stdin!.end(req.input ?? '');
      child.on('close', (code, signal) => {
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        // A command that could not be started (ENOENT: close reports -errno, not null) is a failure
        // to run it, never an exit status — also with allowFail.
        if (spawnError) {
          reject(new CommandError(req.step, argv, undefined, spawnError.message));
          return;
        }
        const exitCode = code ?? -1;
        if (exitCode !== 0 && !req.allowFail) {
          reject(
            new CommandError(
              req.step,
              argv,
              code ?? undefined,
              stderr.trim() || (signal ? `killed by ${signal}` : ''),
            ),
          );
          return;
        }
        resolve({ exitCode, stdout, stderr });
      });
    });
  }
}

export type CannedResult = Partial<RunResult>;
export type Responder = (req: RunRequest) => CannedResult | undefined;

/**
 * Records every call and returns canned results: the first responder that returns a result answers;
 * otherwise exit 0 with empty output. A canned non-zero exit throws CommandError unless `allowFail`.
 */
export class DryRunRunner implements CommandRunner {
  readonly calls: RunRequest[] = [];
  private readonly responders: Responder[] = [];

  /** Answer requests whose argv starts with `prefix` (strings compared exactly). */
  on(prefix: readonly string[], result: CannedResult | ((req: RunRequest) => CannedResult)): this {
    this.responders.push((req) =>
      prefix.every((p, i) => req.argv[i] === p)
        ? typeof result === 'function'
          ? result(req)
          : result
        : undefined,
    );
    return this;
  }

  /** Answer with a custom function (return undefined to fall through). */
  respond(fn: Responder): this {
    this.responders.push(fn);
    return this;
  }

  async run(req: RunRequest): Promise<RunResult> {
    this.calls.push({ ...req, argv: [...req.argv] });
    let canned: CannedResult | undefined;
    for (const r of this.responders) {
      canned = r(req);
      if (canned) break;
    }
    const res: RunResult = {
      exitCode: canned?.exitCode ?? 0,
      stdout: canned?.stdout ?? '',
      stderr: canned?.stderr ?? '',
    };
    if (res.exitCode !== 0 && !req.allowFail) {
      throw new CommandError(req.step, effectiveArgv(req), res.exitCode, res.stderr);
    }
    return res;
  }

  /** The recorded calls as command lines (argv joined by spaces), for golden assertions. */
  commandLines(): string[] {
    return this.calls.map((c) => effectiveArgv(c).join(' '));
  }
}

let host: SpawnRunner | undefined;

/**
 * The one way to get a runner: 'host' runs commands for real (one shared instance: it keeps no state),
 * 'dry-run' a fresh recorder.
 */
export function createRunner(kind: 'dry-run'): DryRunRunner;
export function createRunner(kind?: 'host'): CommandRunner;
export function createRunner(kind: 'host' | 'dry-run' = 'host'): CommandRunner {
  if (kind === 'dry-run') return new DryRunRunner();
  host ??= new SpawnRunner();
  return host;
}
