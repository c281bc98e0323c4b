/**
 * Diagnostics for the daemon: levelled lines to stderr or a log file. Callers pass only
 * messages about what happened (command codes, results, file names), never TPM command
 * parameters, state blobs or secrets.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** swtpm's `--log level=N`: 1 errors and notices (the default), higher is chattier. */
export const LOG_LEVEL = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type LogLevel = keyof typeof LOG_LEVEL;

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  close(): void;
}

export interface LoggerOptions {
  /** A file descriptor to write to (2 = stderr); -1 discards everything. */
  fd: number;
  /** Highest level written: 'warn' by default. */
  level?: LogLevel;
  /** Put in front of every line (swtpm's `prefix=`). */
  prefix?: string;
  /** Close `fd` at close() (true for files opened by openLogFile). */
  ownsFd?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const max = LOG_LEVEL[options.level ?? 'warn'];
  const prefix = options.prefix ?? '';
  let fd = options.fd;
  const write = (level: LogLevel, message: string) => {
    if (fd < 0 || LOG_LEVEL[level] > max) return;
    const tag = level === 'error' ? 'Error: ' : level === 'warn' ? 'Warning: ' : '';
    try {
      writeSync(fd, `${prefix}vtpmd: ${tag}${message}\n`);
    } catch {
      // A broken log sink must never take the daemon down.
    }
  };
  return {
    error: (m) => write('error', m),
    warn: (m) => write('warn', m),
    info: (m) => write('info', m),
    debug: (m) => write('debug', m),
    close: () => {
      if (options.ownsFd && fd > 2) {
        try {
          closeSync(fd);
        } catch {
          /* already closed */
        }
      }
      fd = -1;
    },
  };
}

/** Opens `--log file=P[,truncate]` for appending (or truncating), mode 0640. */
export function openLogFile(path: string, truncate: boolean): number {
  return openSync(path, truncate ? 'w' : 'a', 0o640);
}

/** Discards everything (tests, `--log file=-`). */
export const silentLogger: Logger = createLogger({ fd: -1 });
