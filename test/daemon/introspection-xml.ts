/**
 * Test helper: reduce D-Bus introspection XML to a comparable shape (interfaces → members, argument
 * names/types/directions, property types/access, annotations), ignoring comments, order and spacing.
 */
import { XMLParser } from 'fast-xml-parser';

export interface IfaceShape {
  methods: Record<string, Array<[string, string, string]>>;
  signals: Record<string, Array<[string, string]>>;
  properties: Record<string, { type: string; access: string; annotations: Record<string, string> }>;
  annotations: Record<string, string>;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (name) =>
    ['interface', 'method', 'signal', 'property', 'arg', 'annotation', 'node'].includes(name),
});

function annotations(n: Node): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of (n.annotation as Node[] | undefined) ?? []) out[String(a['@name'])] = String(a['@value']);
  return out;
}

export function interfacesOf(xml: string): Record<string, IfaceShape> {
  const doc = parser.parse(xml) as Node;
  const root = (doc.node as Node[])[0]!;
  const out: Record<string, IfaceShape> = {};
  for (const i of (root.interface as Node[] | undefined) ?? []) {
    const shape: IfaceShape = { methods: {}, signals: {}, properties: {}, annotations: annotations(i) };
    for (const m of (i.method as Node[] | undefined) ?? []) {
      shape.methods[String(m['@name'])] = ((m.arg as Node[] | undefined) ?? []).map((a) => [
        String(a['@name'] ?? ''),
        String(a['@type']),
        String(a['@direction'] ?? 'in'),
      ]);
    }
    for (const s of (i.signal as Node[] | undefined) ?? []) {
      shape.signals[String(s['@name'])] = ((s.arg as Node[] | undefined) ?? []).map((a) => [
        String(a['@name'] ?? ''),
        String(a['@type']),
      ]);
    }
    for (const p of (i.property as Node[] | undefined) ?? []) {
      shape.properties[String(p['@name'])] = {
        type: String(p['@type']),
        access: String(p['@access']),
        annotations: annotations(p),
      };
    }
    out[String(i['@name'])] = shape;
  }
  return out;
}

export function childNodesOf(xml: string): string[] {
  const doc = parser.parse(xml) as Node;
  const root = (doc.node as Node[])[0]!;
  return ((root.node as Node[] | undefined) ?? []).map((n) => String(n['@name']));
}
