/**
 * Who may change things. Read-only calls are open (the dispatcher does not ask). A mutating call is
 * allowed when the caller's uid (asked from the bus: GetConnectionUnixUser) is 0; otherwise polkit
 * decides (CheckAuthorization on org.freedesktop.PolicyKit1 for the action, subject = the caller's bus
 * name, user interaction only when the caller allowed it); when polkit is not on the bus (not running,
 * not activatable) the call is refused. Every refusal is org.virtnet.network1.Error.AccessDenied with
 * the reason.
 */

import type { MethodSpec } from '../bus/api.js';
import { callMethod, isDBusError, type MessageBus, Variant } from '../bus/dbus.js';
import { BusError } from '../bus/errors.js';
import { withTimeout } from '../util/timeout.js';
import type { CallContext } from './bus-objects.js';

const POLKIT_NAME = 'org.freedesktop.PolicyKit1';
const POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority';
const POLKIT_IFACE = 'org.freedesktop.PolicyKit1.Authority';
/** CheckAuthorization flag AllowUserInteraction. */
const POLKIT_ALLOW_INTERACTION = 1;

/** Errors that mean "polkit is not there" rather than "polkit said no". */
const POLKIT_ABSENT = new Set([
  'org.freedesktop.DBus.Error.ServiceUnknown',
  'org.freedesktop.DBus.Error.NameHasNoOwner',
  'org.freedesktop.DBus.Error.Spawn.ServiceNotFound',
  'org.freedesktop.DBus.Error.Spawn.ChildExited',
]);

/** `p`, or an error naming `what` once `ms` ran out. */
function answerWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(p, ms, () => {
    throw new Error(`${what}: no answer within ${ms} ms`);
  });
}

export interface AuthorizerOptions {
  /** Time allowed for polkit without interaction (ms). */
  timeoutMs?: number;
  /** Time allowed when the user may be asked for a password (ms). */
  interactiveTimeoutMs?: number;
  /** Told about each decision (for the log). */
  onDecision?: (d: { sender: string; uid?: number; action: string; allowed: boolean; why: string }) => void;
}

export class BusAuthorizer {
  constructor(
    private readonly bus: MessageBus,
    private readonly opts: AuthorizerOptions = {},
  ) {}

  /** The unix uid of a bus connection. */
  async callerUid(sender: string): Promise<number> {
    const [uid] = await answerWithin(
      callMethod(this.bus, {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'GetConnectionUnixUser',
        signature: 's',
        body: [sender],
      }),
      this.opts.timeoutMs ?? 10_000,
      'GetConnectionUnixUser',
    );
    if (typeof uid !== 'number') throw new Error(`GetConnectionUnixUser returned ${String(uid)}`);
    return uid;
  }

  /** Resolve when allowed; throw BusError('AccessDenied') otherwise. */
  async authorize(ctx: CallContext, action: string, method?: MethodSpec): Promise<void> {
    const what = method ? `${method.name}` : 'this call';
    let uid: number;
    try {
      uid = await this.callerUid(ctx.sender);
    } catch (e) {
      this.decide(ctx.sender, undefined, action, false, 'caller unknown');
      throw new BusError(
        'AccessDenied',
        `${what} refused: cannot identify the caller ${ctx.sender} (${e instanceof Error ? e.message : e})`,
      );
    }
    if (uid === 0) {
      this.decide(ctx.sender, uid, action, true, 'root');
      return;
    }
    let result: unknown[];
    try {
      result = await answerWithin(
        callMethod(this.bus, {
          destination: POLKIT_NAME,
          path: POLKIT_PATH,
          interface: POLKIT_IFACE,
          member: 'CheckAuthorization',
          signature: '(sa{sv})sa{ss}us',
          body: [
            ['system-bus-name', { name: new Variant('s', ctx.sender) }],
            action,
            {},
            ctx.interactive ? POLKIT_ALLOW_INTERACTION : 0,
            '',
          ],
        }),
        ctx.interactive ? (this.opts.interactiveTimeoutMs ?? 120_000) : (this.opts.timeoutMs ?? 10_000),
        'polkit CheckAuthorization',
      );
    } catch (e) {
      if (isDBusError(e) && POLKIT_ABSENT.has(e.type)) {
        this.decide(ctx.sender, uid, action, false, 'no polkit');
        throw new BusError(
          'AccessDenied',
          `${what} needs ${action}: uid ${uid} is not root and polkit (${POLKIT_NAME}) is not available on this bus; run it as root`,
        );
      }
      this.decide(ctx.sender, uid, action, false, 'polkit error');
      const detail = isDBusError(e) ? `${e.type}: ${e.text}` : e instanceof Error ? e.message : String(e);
      throw new BusError('AccessDenied', `${what} needs ${action}: asking polkit failed (${detail})`);
    }
    const [isAuthorized, isChallenge] = (result[0] ?? []) as [boolean, boolean, unknown];
    if (isAuthorized === true) {
      this.decide(ctx.sender, uid, action, true, 'polkit');
      return;
    }
    this.decide(ctx.sender, uid, action, false, isChallenge ? 'polkit challenge' : 'polkit no');
    throw new BusError('AccessDenied', refusalText(what, action, uid, isChallenge === true, ctx.interactive));
  }

  private decide(sender: string, uid: number | undefined, action: string, allowed: boolean, why: string) {
    this.opts.onDecision?.({ sender, uid, action, allowed, why });
  }
}

/**
 * The AccessDenied text for a polkit "no". Advising to retry with interactive authorization only
 * helps a caller that did not allow it (message flag ALLOW_INTERACTIVE_AUTHORIZATION unset); a caller
 * that did allow it was refused, or its authentication failed or was dismissed.
 */
export function refusalText(
  what: string,
  action: string,
  uid: number | undefined,
  isChallenge: boolean,
  interactive: boolean,
): string {
  if (isChallenge && !interactive) {
    return `${what} needs ${action}: authentication is required; retry allowing interactive authorization (e.g. busctl --allow-interactive-authorization=yes, or run as root)`;
  }
  if (isChallenge) {
    return `${what} needs ${action}: authentication is required and was not given (no authentication agent, or it was dismissed) for uid ${uid}; run it as root or ask an administrator for a polkit rule`;
  }
  return interactive
    ? `${what} needs ${action}: polkit refused it for uid ${uid} (interactive authorization was allowed; authentication failed or was dismissed)`
    : `${what} needs ${action}: polkit refused it for uid ${uid}`;
}
