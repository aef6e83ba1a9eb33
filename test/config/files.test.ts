import { describe, expect, it } from 'vitest';
import { networkNameOfFile } from '../../src/config/files.js';

describe('networkNameOfFile', () => {
  it('accepts <name>.xml with a valid network name', () => {
    expect(networkNameOfFile('/etc/virtnet/networks/default.xml')).toBe('default');
    expect(networkNameOfFile('lab-1.net.xml')).toBe('lab-1.net');
  });
  it.each([
    'default.xml.new', // libvirt's temp file
    'default.xml~',
    'default.xml.bak',
    '.default.xml.swp',
    '.default.xml.swx',
    '4913', // vim's write test
    '.#default.xml', // emacs lock
    '#default.xml#', // emacs autosave
    '.default.xml.1234.1.abcd.tmp', // our own atomic write
    'default.xml.dpkg-new',
    '.hidden.xml',
    'README',
    '.xml',
    'bad,name.xml',
  ])('ignores %s', (f) => {
    expect(networkNameOfFile(f)).toBeUndefined();
  });
});
