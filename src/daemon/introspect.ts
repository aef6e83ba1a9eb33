/**
 * Introspection XML (the D-Bus introspection format) built from the API description in api.ts, with
 * argument names and the EmitsChangedSignal annotations. Pure.
 */
import type { ArgSpec, InterfaceSpec } from '../bus/api.js';

export const INTROSPECT_DOCTYPE =
  '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n' +
  ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function arg(x: ArgSpec, direction?: 'in' | 'out'): string {
  const dir = direction ? ` direction="${direction}"` : '';
  return `   <arg type="${esc(x.type)}" name="${esc(x.name)}"${dir}/>`;
}

/** One `<interface>` element. */
export function interfaceXml(spec: InterfaceSpec): string {
  const lines: string[] = [` <interface name="${esc(spec.name)}">`];
  for (const m of spec.methods) {
    const args = [...m.in.map((x) => arg(x, 'in')), ...m.out.map((x) => arg(x, 'out'))];
    if (!args.length) lines.push(`  <method name="${esc(m.name)}"/>`);
    else lines.push(`  <method name="${esc(m.name)}">`, ...args, '  </method>');
  }
  for (const s of spec.signals) {
    const args = s.args.map((x) => arg(x));
    if (!args.length) lines.push(`  <signal name="${esc(s.name)}"/>`);
    else lines.push(`  <signal name="${esc(s.name)}">`, ...args, '  </signal>');
  }
  for (const p of spec.properties) {
    const head = `  <property name="${esc(p.name)}" type="${esc(p.type)}" access="${p.access}"`;
    if (p.emitsChanged === 'true') lines.push(`${head}/>`);
    else
      lines.push(
        `${head}>`,
        `   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="${p.emitsChanged}"/>`,
        '  </property>',
      );
  }
  lines.push(' </interface>');
  return lines.join('\n');
}

/** A whole introspection document: the object's interfaces, then its child nodes. */
export function nodeXml(interfaces: InterfaceSpec[], children: string[]): string {
  const parts = [INTROSPECT_DOCTYPE, '<node>'];
  for (const i of interfaces) parts.push(interfaceXml(i));
  for (const c of children) parts.push(` <node name="${esc(c)}"/>`);
  parts.push('</node>');
  return `${parts.join('\n')}\n`;
}
