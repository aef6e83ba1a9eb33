/** The namespace harness lives in src/sandbox/netns.ts (the demo uses it too); tests import it from here. */
export * from '../../src/sandbox/netns.js';
