/** virtnet's version (re-exported: the one reader lives in src/util/package.ts). */
export { virtnetVersion } from '../util/package.js';
