#!/usr/bin/env node
'use strict';
// npm run watch -- <run-id>: follows a run by its request id with a progress bar until it ends.
// Reads where the run stands first (from storage), then listens on its pub/sub topics
// (tariffsim:*:<run-id>). `--cancel` cancels the run first (as run-simulation's `cancel` input
// does), then follows it to its end. Exit status: 0 done, 1 failed (or the watch itself failed:
// one line `watch: <error>`), 2 usage, 3 timed out, 4 cancelled, 5 no such run, 6 storage could not
// be read (for --unreadable-after), 129/130/143 interrupted (SIGHUP/SIGINT/SIGTERM: the bar is
// stopped and the cursor shown again; the run goes on).

const os = require('node:os');
const cliProgress = require('cli-progress');
const { commandLine } = require('./cli');
const { config } = require('../runtime/config');
const { ENVIRONMENTS } = require('../runtime/environment');
const { scrubPaths } = require('../runtime/paths');
const { openStorage } = require('../runtime/storage');
const { openBus, closeBuses } = require('../runtime/pubsub');
const { RUN_ID, watchRun, readState, ended, cancelRun } = require('../runtime/runs');

/** The exit statuses. */
const EXIT = Object.freeze({ done: 0, failed: 1, usage: 2, timeout: 3, cancelled: 4, unknown: 5, unreadable: 6 });

/** Seconds a run may stay unknown (not in storage) before the watch gives up: the dev server's. */
const UNKNOWN_AFTER_S = 30;

/** Seconds storage may refuse every read (unreachable, unreadable) before the watch gives up. */
const UNREADABLE_AFTER_S = 30;

/** The signals that end the watch (the bar stopped, the cursor shown again): SIGHUP, a closed terminal. */
const SIGNALS = Object.freeze(['SIGHUP', 'SIGINT', 'SIGTERM']);

/** The longest wait a timer can take (setTimeout's limit, 2^31 - 1 ms), in seconds. */
const MAX_SECONDS = Math.floor(0x7fffffff / 1000);

const USAGE = `usage: npm run watch -- <run-id> [--cancel [--reason TEXT]] [--env DEV|STAGING|PROD] [--storage LOCATION] [--redis URL] [--timeout SECONDS] [--unknown-after SECONDS] [--unreadable-after SECONDS]

Follows a tariffsim run until it is done, failed or cancelled; --cancel cancels it first (its
chunks start no new work). Defaults come from the environment's configuration (--env, default
DEV: TARIFFSIM_STORAGE, REDIS_URL); without REDIS_URL only this process's embedded bus exists, so
the bar is fed by polling the run's state in storage.

  --timeout SECONDS           give up after that long (default 0: never)
  --unknown-after SECONDS     give up when no such run is in storage for that long (default ${UNKNOWN_AFTER_S};
                              0: wait for it however long, for a run started later)
  --unreadable-after SECONDS  give up when every read of storage has failed for that long (storage
                              unreachable or unreadable; default ${UNREADABLE_AFTER_S}; 0: keep trying however long)

Exit status: 0 done (its result on stdout), 1 failed (or the watch itself failed: one line
'watch: <error>'), 2 usage, 3 timed out, 4 cancelled, 5 no such run (--unknown-after; at once
with --cancel), 6 storage could not be read (--unreadable-after; at once with --cancel),
129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM (the run goes on).`;

/** One line on stderr, then the status: a usage error. */
function usageError(message) {
  process.stderr.write(`watch: ${message} (npm run watch -- --help)\n`);
  return EXIT.usage;
}

/**
 * A number of seconds as given to a flag (digits, with a fraction if need be), or null when it is
 * not one a timer can wait.
 * @param {string} text
 */
function seconds(text) {
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  const s = Number(text);
  return s <= MAX_SECONDS ? s : null;
}

/** The bar, once made: stopped (the cursor shown again) on every way out. */
let bar = null;

/** Where a run stands, in a few words: `running, 3/10 chunks`. */
const standing = (state) => `${state.status}${state.chunks ? `, ${state.done}/${state.chunks} chunks` : ''}`;

async function main() {
  const parsed = commandLine(
    process.argv.slice(2),
    {
      env: { type: 'string', default: 'DEV' },
      storage: { type: 'string' },
      redis: { type: 'string' },
      timeout: { type: 'string', default: '0' },
      'unknown-after': { type: 'string', default: String(UNKNOWN_AFTER_S) },
      'unreadable-after': { type: 'string', default: String(UNREADABLE_AFTER_S) },
      cancel: { type: 'boolean', default: false },
      reason: { type: 'string' },
    },
    USAGE,
    { positionals: true },
  );
  if (parsed.exit !== undefined) return parsed.exit;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    process.stderr.write(`give one run id\n${USAGE}\n`);
    return EXIT.usage;
  }
  const runId = positionals[0];
  if (!RUN_ID.test(runId)) {
    const shown = JSON.stringify(runId.length > 60 ? `${runId.slice(0, 60)}...` : runId);
    return usageError(`${shown} is not a run id: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  const env = values.env.toUpperCase();
  if (!ENVIRONMENTS.includes(env)) return usageError(`--env ${JSON.stringify(values.env)}: give one of ${ENVIRONMENTS.join(', ')}`);
  const timeout = seconds(values.timeout);
  if (timeout === null) return usageError(`--timeout ${JSON.stringify(values.timeout)}: give seconds, 0 to ${MAX_SECONDS} (0: no timeout)`);
  const unknownAfter = seconds(values['unknown-after']);
  if (unknownAfter === null) return usageError(`--unknown-after ${JSON.stringify(values['unknown-after'])}: give seconds, 0 to ${MAX_SECONDS} (0: wait however long)`);
  const unreadableAfter = seconds(values['unreadable-after']);
  if (unreadableAfter === null) return usageError(`--unreadable-after ${JSON.stringify(values['unreadable-after'])}: give seconds, 0 to ${MAX_SECONDS} (0: keep trying however long)`);

  bar = new cliProgress.SingleBar(
    { format: '{run} [{bar}] {percentage}% | {value}/{total} chunks | {status}', hideCursor: true, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1000 },
    cliProgress.Presets.shades_classic,
  );
  // SIGHUP/SIGINT/SIGTERM: stop the bar (it shows the cursor again) and end the watch (exit
  // 129/130/143, as a shell reports them); the run goes on. A second signal, or a watch that does
  // not end soon (a cancel in flight, Redis reconnecting), exits at once. After SIGHUP the terminal
  // may be gone: a write to it that fails (EIO) is no reason to end otherwise.
  const interrupted = new AbortController();
  let signalled = null;
  const onSignal = (name) => {
    const code = 128 + os.constants.signals[name];
    if (name === 'SIGHUP') {
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
    }
    if (bar) bar.stop();
    if (signalled !== null) process.exit(code);
    signalled = name;
    interrupted.abort();
    setTimeout(() => process.exit(code), 2000).unref();
  };
  for (const name of SIGNALS) process.on(name, onSignal);
  const leave = (name) => {
    process.stderr.write(`run ${runId}: watch interrupted (${name}); the run goes on\n`);
    return 128 + os.constants.signals[name];
  };

  const settings = config.forEnvironment(env);
  const location = values.storage || settings.storage;
  const storage = openStorage(location, { endpoint: settings.s3Endpoint || undefined });
  const bus = openBus(values.redis || settings.redisUrl);
  const notFound = (after) => `run ${runId}: no such run in storage ${scrubPaths(location)}${after} (check the run id, --env and --storage)\n`;
  // One line: the storage, how long, the last error (its message, no stack, no machine paths).
  const unreadable = (after, error) => {
    const text = error instanceof Error ? error.message || error.name : String(error);
    const shown = scrubPaths(text).replace(/\s+/g, ' ').trim();
    return `run ${runId}: storage ${scrubPaths(location)} could not be read${after}: ${shown.length > 300 ? `${shown.slice(0, 300)}...` : shown} (check --storage and --env, and that the storage is reachable)\n`;
  };
  try {
    if (values.cancel) {
      let state;
      try {
        state = await readState(storage, runId, { bus });
      } catch (e) {
        if (signalled !== null) return leave(signalled);
        process.stderr.write(unreadable(', nothing cancelled', e));
        return EXIT.unreadable;
      }
      if (signalled !== null) return leave(signalled);
      if (state.status === 'unknown') {
        process.stderr.write(notFound(': nothing to cancel'));
        return EXIT.unknown;
      }
      if (ended(state.status)) {
        process.stderr.write(`run ${runId}: had already ended (${state.status}), nothing to cancel\n`);
      } else if (await cancelRun(storage, bus, runId, { reason: values.reason || 'cancelled from the watch command', environment: env })) {
        process.stderr.write(`run ${runId}: cancel requested\n`);
      } else {
        // The run took another end first (done, failed, or cancelled by someone else): the cancel
        // changed nothing. Not ended yet: its end is being recorded (a merge that has begun).
        const now = await readState(storage, runId, { bus });
        if (ended(now.status)) process.stderr.write(`run ${runId}: had already ended (${now.status}), nothing to cancel\n`);
        else process.stderr.write(`run ${runId}: too late to cancel, the run is already ending (${standing(now)} so far); following it to its end\n`);
      }
    }
    let started = false;
    const final = await watchRun({
      storage,
      bus,
      runId,
      timeoutMs: timeout * 1000,
      unknownMs: unknownAfter * 1000,
      unreadableMs: unreadableAfter * 1000,
      signal: interrupted.signal,
      onProgress: (state) => {
        if (signalled !== null) return;
        const total = state.chunks || 1;
        if (!started) {
          bar.start(total, state.done, { run: state.run_id, status: state.status });
          started = true;
        }
        bar.setTotal(total);
        bar.update(state.done, { status: state.status });
      },
    });
    bar.stop();
    switch (final.status) {
      case 'done':
        process.stdout.write(`${JSON.stringify(final.result, null, 2)}\n`);
        return EXIT.done;
      case 'failed':
        process.stderr.write(`run ${runId} failed: ${final.failure.reason}\n`);
        return EXIT.failed;
      case 'cancelled':
        process.stderr.write(`run ${runId} cancelled: ${final.cancellation.reason}\n`);
        return EXIT.cancelled;
      case 'unknown':
        process.stderr.write(notFound(` after ${unknownAfter} s`));
        return EXIT.unknown;
      case 'unreadable':
        process.stderr.write(unreadable(` for ${unreadableAfter} s`, final.error));
        return EXIT.unreadable;
      case 'aborted':
        return leave(signalled || 'SIGINT');
      case 'timeout': {
        // Where the run stood when last read (if storage could be read at all).
        const last = final.last ? `last seen ${standing(final.last)}${final.last.status === 'unknown' ? ' (no such run in storage yet)' : ''}` : `storage could not be read${final.error ? `: ${scrubPaths(final.error)}` : ''}`;
        process.stderr.write(`run ${runId}: timed out after ${timeout} s, ${last}\n`);
        return EXIT.timeout;
      }
      default:
        throw new Error(`the watch ended as ${JSON.stringify(final)}`);
    }
  } finally {
    await closeBuses();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    if (bar) bar.stop();
    // One line, no stack: what went wrong, without the machine's paths.
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    process.stderr.write(`watch: ${scrubPaths(what).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(EXIT.failed);
  },
);
