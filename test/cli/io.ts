/** An in-memory CliIo for running `main()` in-process. */
import type { CliIo } from '../../src/cli/command.js';

export interface CapturedIo extends CliIo {
  out: string;
  err: string;
}

export function captureIo(files: Record<string, string> = {}): CapturedIo {
  const io: CapturedIo = {
    out: '',
    err: '',
    stdout(t) {
      io.out += t;
    },
    stderr(t) {
      io.err += t;
    },
    async readFile(path) {
      if (Object.hasOwn(files, path)) return files[path]!;
      const e = new Error(`ENOENT: no such file or directory, open '${path}'`) as Error & { code: string };
      e.code = 'ENOENT';
      throw e;
    },
    env: {},
  };
  return io;
}
