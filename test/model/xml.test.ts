import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  escapeAttr,
  MAX_XML_BYTES,
  parseXmlDocument,
  serializeElement,
  textContent,
} from '../../src/model/xml.js';

describe('parseXmlDocument', () => {
  it('builds a tree with resolved namespaces, dropping comments and PIs', () => {
    const root = parseXmlDocument(
      `<?xml version='1.0'?><!-- c --><r xmlns:p='urn:p' a='1'><?pi x?><p:x b='&lt;&#65;'>t&amp;u</p:x><y/></r>`,
    );
    expect(root).toMatchObject({ name: 'r', ns: '', attrs: { 'xmlns:p': 'urn:p', a: '1' } });
    const x = root.children[0];
    expect(x).toMatchObject({ name: 'p:x', local: 'x', ns: 'urn:p', attrs: { b: '<A' } });
    expect(textContent(root)).toBe('t&u');
  });
  it('uses the default namespace', () => {
    expect(parseXmlDocument("<r xmlns='urn:d'><c/></r>").ns).toBe('urn:d');
  });
  it.each([
    ['<r>', 'not well-formed'],
    ['<!DOCTYPE r><r/>', 'DOCTYPE'],
    ['<r>&ent;</r>', 'predefined entities'],
    ['<r>a & b</r>', 'predefined entities'],
    ['<r/><s/>', 'exactly one root'],
    ['x<r/>', 'not well-formed'],
    ['<r>&#1;</r>', 'not an allowed XML 1.0 character'],
    ['<r>\u0000</r>', 'not allowed in XML 1.0'],
  ])('rejects %j', (x, why) => {
    try {
      parseXmlDocument(x);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).problems[0]?.reason).toContain(why);
    }
  });
  it('rejects oversized input and non-strings', () => {
    expect(() => parseXmlDocument(`<r>${'a'.repeat(MAX_XML_BYTES)}</r>`)).toThrow(ValidationError);
    expect(() => parseXmlDocument(undefined)).toThrow(ValidationError);
  });
});

describe('escaping and serializing', () => {
  it('escapes all five XML specials in attributes', () => {
    expect(escapeAttr(`<>&'"`)).toBe('&lt;&gt;&amp;&apos;&quot;');
  });
  it('serializes like libxml2 (double quotes, nested indentation, inline text)', () => {
    const el = parseXmlDocument(`<a k='v"'><b>t</b><c><d/></c></a>`);
    expect(serializeElement(el)).toEqual([
      '<a k="v&quot;">',
      '  <b>t</b>',
      '  <c>',
      '    <d/>',
      '  </c>',
      '</a>',
    ]);
  });
});
