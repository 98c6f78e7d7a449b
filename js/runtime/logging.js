'use strict';
// Plain, tagged logging. Every line carries a timestamp, the environment and the request id:
//
//   2026-07-01T08:15:00.123Z [PROD][req-42][INFO] -- price: 1 profile(s) on sample in 0.08 ms
//
// or, with Lambda's JSON log format, one JSON object per line with the same fields (timestamp,
// level, env, requestId, message; errorType, errorMessage and stackTrace for errors), ready for
// CloudWatch -> Elasticsearch. Lines go straight to standard output, which Lambda sends to
// CloudWatch.

const fs = require('node:fs');

const LEVELS = Object.freeze({ TRACE: 10, DEBUG: 20, INFO: 30, WARN: 40, ERROR: 50, FATAL: 60 });

/**
 * The lines an invocation writes, for the dev server's `X-Amz-Log-Type: Tail` (`withTail`). Made
 * on first use: a Lambda never asks for it, and an AsyncLocalStorage costs a cold start about
 * 0.15 ms.
 * @type {import('node:async_hooks').AsyncLocalStorage<{text: string}> | null}
 */
let tailStore = null;
const TAIL_KEEP = 8192;

/**
 * Runs `fn` keeping the lines loggers write meanwhile, in it and in what it starts (the last 8 KB),
 * in `tail.text` as well.
 * @template T
 * @param {{text: string}} tail
 * @param {() => T} fn
 * @returns {T}
 */
function withTail(tail, fn) {
  if (tailStore === null) tailStore = new (require('node:async_hooks').AsyncLocalStorage)();
  return tailStore.run(tail, fn);
}

/** Where lines go instead of standard output while a test collects them (`redirectStdout`). */
let redirect = null;

/**
 * Sends the lines loggers write to standard output to `fn` instead (tests), or back to standard
 * output (`null`).
 * @param {((text: string) => void) | null} fn
 */
function redirectStdout(fn) {
  redirect = fn;
}

/**
 * Writes a finished line to standard output with one system call. `process.stdout` is a stream
 * whose first use loads Node's stream modules (milliseconds of a cold start) and whose every write
 * passes through several layers; standard output is synchronous for files and pipes on Linux
 * anyway. Output that cannot take the line at once (a non-blocking pipe that is full) gets the
 * rest through the stream, in order.
 */
function writeStdout(text) {
  if (redirect !== null) {
    redirect(text);
    return;
  }
  let written = 0;
  try {
    written = fs.writeSync(1, text);
  } catch (e) {
    // Standard output gone (EPIPE, EBADF): the line has nowhere to go, and a log line never fails
    // the request that wrote it.
    if (e.code !== 'EAGAIN') return;
  }
  // Cut short (a pipe that was nearly full): the rest, in order, through the stream.
  const bytes = Buffer.byteLength(text);
  if (written < bytes) {
    if (!stdoutGuarded) {
      stdoutGuarded = true;
      process.stdout.on('error', () => {}); // as above: a closed output loses lines, not requests
    }
    process.stdout.write(Buffer.from(text).subarray(written));
  }
}

/** Whether process.stdout has a listener that keeps a closed output from crashing the process. */
let stdoutGuarded = false;

const pad2 = (n) => (n < 10 ? `0${n}` : `${n}`);

/**
 * A time (milliseconds since 1970, up to the year 9999) as UTC ISO 8601 text, as `toISOString`
 * writes it, by arithmetic: a process's first `Date` object costs a cold start a few hundred
 * microseconds (V8 sets up its date cache and the host's time zone), none of which a log line
 * needs. Days to a civil date: H. Hinnant's `civil_from_days`.
 * @param {number} ms
 * @returns {string}
 */
function isoOf(ms) {
  const days = Math.floor(ms / 86_400_000);
  const inDay = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const msPart = inDay % 1000;
  const s = Math.floor(inDay / 1000);
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}.${msPart < 100 ? (msPart < 10 ? '00' : '0') : ''}${msPart}Z`;
}

/** The time of day as ISO 8601 text, made again only when the millisecond changed (a warm
 * `price` call is tens of microseconds; making the text is about a microsecond). */
let stampMs = -1;
let stamp = '';
function isoNow() {
  const ms = Date.now();
  if (ms !== stampMs) {
    stampMs = ms;
    stamp = isoOf(ms);
  }
  return stamp;
}

/** Milliseconds on a monotonic clock (process.hrtime: `performance` loads modules on first use). */
function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function keepTail(text) {
  if (tailStore === null) return;
  const tail = tailStore.getStore();
  if (tail) tail.text = (tail.text + text).slice(-TAIL_KEEP);
}

/**
 * A logger bound to an environment and a request id (`createLogger(...).bind(env, requestId)`):
 * one small object per request, its methods on the prototype.
 */
class BoundLogger {
  constructor(emit, env, requestId, min) {
    this.emit = emit;
    this.env = env;
    this.requestId = requestId;
    this.min = min;
  }

  /** Whether lines of this level are written. */
  enabled(name) {
    return LEVELS[name] >= this.min;
  }

  at(name, message, err) {
    if (LEVELS[name] >= this.min) this.emit(name, this.env, this.requestId, message, err);
  }

  trace(message) {
    this.at('TRACE', message);
  }

  debug(message) {
    this.at('DEBUG', message);
  }

  info(message) {
    this.at('INFO', message);
  }

  warn(message, err) {
    this.at('WARN', message, err);
  }

  /** Logs a message and, when given, an error with its stack. */
  error(message, err) {
    this.at('ERROR', message, err);
  }

  fatal(message, err) {
    this.at('FATAL', message, err);
  }
}

/**
 * A logger.
 * @param {object} [options]
 * @param {'text'|'json'} [options.format]
 * @param {(text: string) => void} [options.write] where finished lines go (default: stdout)
 * @param {string} [options.lineBreak] joins the lines of one record in text format (CR in Lambda)
 * @param {() => Date} [options.now]
 */
function createLogger({ format = 'text', write = writeStdout, lineBreak = '\n', now = undefined } = {}) {
  function emit(level, env, requestId, message, err) {
    const timestamp = now === undefined ? isoNow() : now().toISOString();
    if (format === 'json') {
      const record = { timestamp, level, env, requestId, message: String(message) };
      if (err) {
        record.errorType = err.name;
        record.errorMessage = err.message;
        record.stackTrace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
      }
      const line = `${JSON.stringify(record)}\n`;
      keepTail(line);
      write(line);
      return;
    }
    let text = `${timestamp} [${env}][${requestId}][${level}] -- ${message}`;
    if (err) {
      const stack = typeof err.stack === 'string' && err.stack ? err.stack : `${err.name}: ${err.message}`;
      text += `${lineBreak}${stack.split('\n').join(lineBreak)}`;
    }
    const line = `${text}\n`;
    keepTail(line);
    write(line);
  }

  return {
    /**
     * A logger whose lines carry this environment and request id.
     * @param {string} env
     * @param {string} requestId
     * @param {string} [level] the least level written (default INFO)
     */
    bind(env, requestId, level = 'INFO') {
      return new BoundLogger(emit, env, requestId, LEVELS[level] || LEVELS.INFO);
    },
  };
}

module.exports = { LEVELS, createLogger, withTail, nowMs, redirectStdout, isoOf };
