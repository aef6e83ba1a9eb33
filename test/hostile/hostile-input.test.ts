/**
 * Hostile input, in process (issue 7, "Faults and hostile input"): ≥ 10,000 generated cases across
 * - network XML (test/helpers/arbitraries.ts): parse → defaults → full plan (dnsmasq conf, hostsfile,
 *   addn-hosts, nft and iptables scripts, ip batch): a ValidationError naming path+value, or a plan in
 *   which no value made a line of its own (no line starts with a hostile marker, no control character);
 * - domain XML + virtnet metadata handed to the hook handler (handleHookEvent with an in-memory engine
 *   and forwarder, the same code the daemon and the in-process fallback run): a clear error
 *   (ValidationError with path+value, ConflictError, NotFoundError) or only well-formed values reach
 *   the engine (MAC, IP, DNS name, ifname) and the forwarder (ports, addresses);
 * - hook arguments (parseHookArgs): wrong counts, huge, newlines, NULs, metacharacters;
 * - the hooks/qemu script itself for a sample (shells cannot pass NUL in argv): it never evaluates an
 *   argument (a `$(touch …)`/backquote argument creates nothing) and fails with one line.
 * Every case is counted; one summary line is printed. Deeper single-purpose properties already exist
 * (test/model/fuzz-network.test.ts, test/model/fuzz-domain.test.ts, test/plan/dnsmasq-injection.test.ts,
 * test/plan/firewall/injection.property.test.ts); this suite runs all inputs through to what is written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/errors.js';
import { parseHookArgs } from '../../src/hooks/args.js';
import type { DomainForwards } from '../../src/hooks/context.js';
import { handleHookEvent } from '../../src/hooks/handler.js';
import { applyDefaults } from '../../src/model/defaults.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import {
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../src/plan/firewall/portforward.js';
import { defaultPlanPaths, planNetwork } from '../../src/plan/index.js';
import { anyNetworkXml, hostileString } from '../helpers/arbitraries.js';
import { projectRoot } from '../helpers/shared.js';
import { macFor, makeContext, meta, uuidFor } from '../hooks/fakes.js';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f\u2028\u2029]/;
/** A line that starts with one of these was made by an input value. */
const INJECTED_LINE = /^\s*(INJECTED|dhcp-script|conf-file|\$\(|`|;|\||rm -rf|nc evil)/;

const counts = { network: 0, domain: 0, args: 0, script: 0, failures: 0 };
const failures: string[] = [];
function fail(what: string): void {
  counts.failures++;
  failures.push(what.slice(0, 600));
}
/** The failures recorded since `mark` (each test checks only its own). */
const since = (mark: number) => failures.slice(mark, mark + 20);

afterAll(() => {
  const total = counts.network + counts.domain + counts.args + counts.script;
  console.log(
    `HOSTILE-INPUT SUMMARY: cases=${total} (network-xml=${counts.network} domain+metadata=${counts.domain} hook-args=${counts.args} hook-script=${counts.script}) failures=${counts.failures}`,
  );
});

function checkValidationError(e: unknown, input: string): void {
  if (!(e instanceof ValidationError)) {
    fail(`non-ValidationError ${String(e)} for ${JSON.stringify(input.slice(0, 200))}`);
    return;
  }
  if (e.problems.length === 0) fail(`ValidationError without problems for ${JSON.stringify(input)}`);
  for (const p of e.problems)
    if (typeof p.path !== 'string' || !p.path || typeof p.reason !== 'string' || !p.reason)
      fail(`problem without path/reason: ${JSON.stringify(p)}`);
}

function stringLeaves(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) stringLeaves(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) stringLeaves(x, out);
  return out;
}

describe('hostile input, in process', () => {
  it('network XML → plan: ValidationError or no injected line, no control character (3,000)', () => {
    const before = failures.length;
    fc.assert(
      fc.property(anyNetworkXml(), (xml) => {
        counts.network++;
        let net: ReturnType<typeof parseNetworkXml>['network'];
        try {
          net = applyDefaults(parseNetworkXml(xml).network);
        } catch (e) {
          checkValidationError(e, xml);
          return;
        }
        // dnsmasq:options are the admin's own verbatim lines (libvirt's passthrough): not injection.
        const own = new Set(net.dnsmasqOptions);
        for (const backend of ['nftables', 'iptables'] as const) {
          let texts: string[];
          try {
            const plan = planNetwork(net, {
              firewall: backend,
              paths: defaultPlanPaths('/run/virtnet/dnsmasq', net.name),
            });
            texts = [
              plan.dnsmasqConf ?? '',
              plan.hostsfile,
              plan.addnhosts,
              plan.links.batch,
              plan.links.teardown,
              ...stringLeaves(plan.firewall),
            ];
          } catch (e) {
            checkValidationError(e, xml); // start-time refusals (libvirt's) are ValidationErrors too
            return;
          }
          for (const t of texts)
            for (const line of t.split('\n')) {
              if (own.has(line)) continue;
              if (INJECTED_LINE.test(line)) fail(`injected line ${JSON.stringify(line)} from ${xml}`);
              if (CONTROL.test(line.replace(/\t/g, ' ')))
                fail(`control character in ${JSON.stringify(line)} from ${xml}`);
            }
        }
      }),
      { numRuns: 3000 },
    );
    expect(since(before)).toEqual([]);
  }, 300_000);

  it('domain XML + metadata through the hook handler: a clear error or only clean values reach the engine (3,000)', async () => {
    const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
    const IP = /^[0-9a-f.:]+$/;
    const NAME = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
    const IFNAME = /^[^\s/:%,#="\\]{1,15}$/;
    const escapeXml = (v: string) =>
      v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
    const field = <T extends string>(good: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: hostileString() });
    const domain = fc.record({
      name: field(fc.constantFrom('web', 'db-1', 'a.b')),
      uuidN: fc.nat(50),
      mac: field(fc.constant('')),
      ip: field(fc.constantFrom('10.77.0.50', '10.77.0.60', 'fd00:77::50', '10.78.0.1')),
      dns: field(fc.constantFrom('web', 'host-1')),
      hostPort: field(fc.constantFrom('8080', '2222', '0', '65536')),
      guestPort: field(fc.constantFrom('80', '22')),
      proto: field(fc.constantFrom('tcp', 'udp')),
      bridge: field(fc.constant('vbr-h8')),
      tap: field(fc.constantFrom('vnet0', 'vnet1')),
      op: fc.constantFrom('prepare', 'start', 'started', 'stopped', 'release', 'reconnect'),
      raw: fc.nat(9),
    });
    const docs = fc.sample(domain, { numRuns: 3000 });
    const ctx = makeContext();
    const before = failures.length;
    // Every forward set the handler installs is rendered for both backends, as the real forwarder does.
    const applied: DomainForwards[] = [];
    const realApply = ctx.forwarder.apply.bind(ctx.forwarder);
    ctx.forwarder.apply = async (f) => {
      applied.push(structuredClone(f));
      return realApply(f);
    };
    for (const d of docs) {
      counts.domain++;
      const mac = d.mac === '' ? macFor(d.uuidN) : d.mac;
      const v = (s: string) => (d.raw === 0 ? s : escapeXml(s));
      const md = meta(
        `<virtnet:interface mac='${v(mac)}' ip='${v(d.ip)}' name='${v(d.dns)}'><virtnet:forward proto='${v(d.proto)}' host-port='${v(d.hostPort)}' guest-port='${v(d.guestPort)}'/></virtnet:interface>`,
      );
      const xml = `<domain type='kvm'><name>${v(d.name)}</name><uuid>${uuidFor(d.uuidN)}</uuid><metadata>${md}</metadata><devices><interface type='bridge'><mac address='${v(mac)}'/><source bridge='${v(d.bridge)}'/><target dev='${v(d.tap)}'/></interface></devices></domain>`;
      try {
        await handleHookEvent(ctx, {
          object: d.name,
          operation: d.op,
          subOperation: d.op.endsWith('ed') ? 'end' : 'begin',
          extra: '-',
          xml,
        });
      } catch (e) {
        if (e instanceof ValidationError) checkValidationError(e, xml);
        else if (!(e instanceof ConflictError) && !(e instanceof NotFoundError))
          fail(`unclear error ${(e as Error)?.name}: ${String(e)} for ${xml}`);
        else if (!(e as Error).message) fail(`empty message for ${xml}`);
      }
    }
    // What reached the engine and the forwarder: well-formed values only.
    for (const n of ctx.engine.nets.values()) {
      for (const h of n.extraHosts) {
        if (h.mac !== undefined && !MAC.test(h.mac)) fail(`engine got MAC ${JSON.stringify(h.mac)}`);
        if (h.ip !== undefined && !IP.test(h.ip)) fail(`engine got IP ${JSON.stringify(h.ip)}`);
        if (h.hostname !== undefined && !NAME.test(h.hostname))
          fail(`engine got hostname ${JSON.stringify(h.hostname)}`);
      }
      for (const p of n.ports) if (!IFNAME.test(p)) fail(`engine got port ${JSON.stringify(p)}`);
    }
    for (const f of ctx.forwarder.installed.values())
      for (const r of f.rules) {
        if (!Number.isInteger(r.hostPort) || r.hostPort < 1 || r.hostPort > 65535)
          fail(`forward host port ${r.hostPort}`);
        if (!Number.isInteger(r.guestPort) || r.guestPort < 1 || r.guestPort > 65535)
          fail(`forward guest port ${r.guestPort}`);
        if (!IP.test(r.guestIp)) fail(`forward guest ip ${JSON.stringify(r.guestIp)}`);
        if (r.proto !== 'tcp' && r.proto !== 'udp') fail(`forward proto ${JSON.stringify(r.proto)}`);
      }
    for (const c of ctx.engine.calls)
      if (CONTROL.test(c) || /INJECTED|\$\(/.test(c))
        fail(`hostile value reached the engine: ${JSON.stringify(c)}`);
    for (const f of applied) {
      const rs = planPortForwards({
        network: 'vnet-h8',
        bridge: 'vbr-h8',
        domain: f.domain,
        subnets: ['10.77.0.0/24', 'fd00:77::/64'],
        forwards: f.rules.map((r) => ({
          proto: r.proto,
          family: r.family,
          hostPort: r.hostPort,
          guestPort: r.guestPort,
          guestIp: r.guestIp,
          ...(r.hostAddress ? { hostAddress: r.hostAddress } : {}),
        })),
      });
      for (const t of [
        ...stringLeaves(renderPortForwardsNftables(rs)),
        ...stringLeaves(renderPortForwardsIptables(rs)),
      ])
        for (const line of t.split('\n')) {
          // The domain name (free-form in libvirt) only appears sanitized ([A-Za-z0-9_]), inside an
          // identifier: a marker may show there, never next to a character that could end it.
          if (
            INJECTED_LINE.test(line) ||
            CONTROL.test(line) ||
            /[^\w-]INJECTED|INJECTED[^\w-]|\$\(|`/.test(line)
          )
            fail(`forward script line ${JSON.stringify(line)} for domain ${JSON.stringify(f.domain)}`);
        }
    }
    // The generator must exercise both outcomes.
    expect(ctx.engine.calls.some((c) => c.startsWith('addHost'))).toBe(true);
    expect(applied.length).toBeGreaterThan(0);
    expect(since(before)).toEqual([]);
  }, 300_000);

  it('hook arguments: ValidationError naming the argument, or four clean values (4,000)', () => {
    const before = failures.length;
    const token = fc.oneof(
      fc.constantFrom('prepare', 'start', 'begin', 'end', '-', 'port-created'),
      hostileString(),
      fc.string({ unit: 'binary', maxLength: 8 }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('qemu', 'network' as const),
        fc.oneof(
          { weight: 4, arbitrary: fc.array(token, { minLength: 4, maxLength: 4 }) },
          { weight: 1, arbitrary: fc.array(token, { maxLength: 8 }) },
          {
            weight: 1,
            arbitrary: fc.nat({ max: 70_000 }).map((n) => ['x'.repeat(n), 'start', 'begin', '-']),
          },
        ),
        (kind, argv) => {
          counts.args++;
          try {
            const a = parseHookArgs(kind, argv);
            // ASCII controls (newline, tab, NUL…) never pass. A domain name may hold other Unicode (libvirt
            // allows it); it only ever reaches a rule sanitized (see the domain test above).
            for (const v of [a.object, a.operation, a.subOperation, a.extra])
              if (/[\u0000-\u001f\u007f]/.test(v)) fail(`parseHookArgs accepted ${JSON.stringify(v)}`);
            if (a.object.includes('/') || a.object.length > 255) fail(`object ${JSON.stringify(a.object)}`);
          } catch (e) {
            checkValidationError(e, argv.join(' '));
            if (e instanceof ValidationError)
              for (const p of e.problems)
                if (p.value === undefined) fail(`problem without value: ${JSON.stringify(p.path)}`);
          }
        },
      ),
      { numRuns: 4000 },
    );
    expect(since(before)).toEqual([]);
  }, 120_000);

  it('hooks/qemu never evaluates an argument and fails with one line (40 real runs)', () => {
    const before = failures.length;
    const dir = mkdtempSync(join(tmpdir(), 'vh9-hookscript-'));
    try {
      const canary = join(dir, 'pwned');
      const evil = [
        `$(touch ${canary})`,
        `\`touch ${canary}\``,
        `; touch ${canary}`,
        `| touch ${canary}`,
        `&& touch ${canary}`,
        `x\ntouch ${canary}`,
        `'; touch ${canary}; '`,
        `"$(touch ${canary})"`,
        `../../etc/passwd`,
        'x'.repeat(100_000),
      ];
      const shapes: Array<(e: string) => string[]> = [
        (e) => [e, 'prepare', 'begin', '-'],
        (e) => ['vm', 'prepare', e, '-'],
        (e) => ['vm', 'start', 'begin', e],
        (e) => [e, 'start', 'begin'],
      ];
      // No bus (a dead address) and no fallback script: the hook must fail cleanly, evaluating nothing.
      const env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}`,
        VIRTNET_HOOK_MAIN: join(dir, 'missing-main.js'),
        VIRTNET_HOOK_TIMEOUT_MS: '2000',
      };
      for (const e of evil)
        for (const shape of shapes) {
          counts.script++;
          const argv = shape(e);
          const r = spawnSync(join(projectRoot, 'hooks', 'qemu'), argv, {
            input: `<domain><name>${e.slice(0, 50).replace(/[<&]/g, '')}</name></domain>`,
            env,
            encoding: 'utf8',
            timeout: 20_000,
          });
          const lines = r.stderr.trim().split('\n').filter(Boolean);
          if (existsSync(canary)) fail(`hooks/qemu evaluated ${JSON.stringify(argv)}`);
          if (r.status === null)
            fail(`hooks/qemu did not exit for ${JSON.stringify(argv.map((a) => a.slice(0, 40)))}`);
          else if (argv.length === 4 && r.status !== 0 && r.status !== 1)
            fail(`hooks/qemu exit ${r.status} for ${JSON.stringify(argv.map((a) => a.slice(0, 40)))}`);
          else if (argv.length !== 4 && r.status !== 2) fail(`hooks/qemu wrong count: exit ${r.status}`);
          // A newline inside an argument may be echoed, but the report itself is one message.
          if (lines.length === 0 && r.status !== 0)
            fail(`hooks/qemu failed silently for ${argv[0]!.slice(0, 40)}`);
          if (!lines.every((l, i) => i === 0 || !l.startsWith('virtnet:')))
            fail(`hooks/qemu printed several reports: ${r.stderr.slice(0, 300)}`);
        }
      expect(readdirSync(dir).filter((f) => f !== 'missing-main.js')).toEqual([]);
      expect(since(before)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('no shell anywhere in src/ (static): no shell:true, exec()/execSync() imports, execaCommand, sh -c', () => {
    const r = spawnSync(
      'grep',
      [
        '-rnE',
        String.raw`shell:\s*true|['"](ba|da)?sh['"],\s*\[\s*['"]-c|(spawn|execFile|execa)\(\s*['"](/bin/)?(ba|da)?sh['"]|import \{[^}]*\b(exec|execSync)\b[^}]*\} from 'node:child_process'|child_process\.exec(Sync)?\(|execaCommand(Sync)?\(`,
        join(projectRoot, 'src'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(1); // grep: 1 = no match
    expect(r.stdout).toBe('');
  });
});
