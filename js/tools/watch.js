#!/usr/bin/env node
'use strict';
// npm run watch -- <run-id>: follows a run by its request id with a progress bar until it ends.
// Reads where the run stands first (from storage), then listens on its pub/sub topics
// (tariffsim:*:<run-id>). `--cancel` cancels the run first (as run-simulation's `cancel` input
// does), then follows it to its end. Exit status: 0 done, 1 failed, 2 usage, 3 timed out,
// 4 cancelled.

const { parseArgs } = require('node:util');
const cliProgress = require('cli-progress');
const { config } = require('../runtime/config');
const { openStorage } = require('../runtime/storage');
const { openBus, closeBuses } = require('../runtime/pubsub');
const { watchRun, readState, ended, cancelRun } = require('../runtime/runs');

const USAGE = `usage: npm run watch -- <run-id> [--cancel [--reason TEXT]] [--env DEV|STAGING|PROD] [--storage LOCATION] [--redis URL] [--timeout SECONDS]

Follows a tariffsim run until it is done, failed or cancelled; --cancel cancels it first (its
chunks start no new work; exit status 4). Defaults come from the environment's
configuration (TARIFFSIM_STORAGE, REDIS_URL); without REDIS_URL only this process's embedded bus
exists, so the bar is fed by polling the run's state in storage.`;

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        env: { type: 'string', default: 'DEV' },
        storage: { type: 'string' },
        redis: { type: 'string' },
        timeout: { type: 'string', default: '0' },
        cancel: { type: 'boolean', default: false },
        reason: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`${e.message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`give one run id\n${USAGE}\n`);
    return 2;
  }
  const settings = config.forEnvironment(values.env.toUpperCase());
  const storage = openStorage(values.storage || settings.storage, { endpoint: settings.s3Endpoint || undefined });
  const bus = openBus(values.redis || settings.redisUrl);
  if (values.cancel) {
    const runId = positionals[0];
    const state = await readState(storage, runId, { bus });
    if (state.status === 'unknown') {
      process.stderr.write(`run ${runId} does not exist\n`);
      await closeBuses();
      return 1;
    }
    if (!ended(state.status)) {
      await cancelRun(storage, bus, runId, { reason: values.reason || 'cancelled from the watch command', environment: values.env.toUpperCase() });
      process.stderr.write(`run ${runId}: cancel requested\n`);
    }
  }
  const bar = new cliProgress.SingleBar(
    { format: '{run} [{bar}] {percentage}% | {value}/{total} chunks | {status}', hideCursor: true, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1000 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const final = await watchRun({
    storage,
    bus,
    runId: positionals[0],
    timeoutMs: Number(values.timeout) * 1000,
    onProgress: (state) => {
      const total = state.chunks || 1;
      if (!started) {
        bar.start(total, state.done, { run: state.run_id, status: state.status });
        started = true;
      }
      bar.setTotal(total);
      bar.update(state.done, { status: state.status });
    },
  });
  if (started) bar.stop();
  await closeBuses();
  if (final.status === 'done') {
    process.stdout.write(`${JSON.stringify(final.result, null, 2)}\n`);
    return 0;
  }
  if (final.status === 'failed') {
    process.stderr.write(`run ${final.run_id} failed: ${final.failure.reason}\n`);
    return 1;
  }
  if (final.status === 'cancelled') {
    process.stderr.write(`run ${final.run_id} cancelled: ${final.cancellation.reason}\n`);
    return 4;
  }
  process.stderr.write(`run ${final.run_id}: timed out while ${final.status}\n`);
  return 3;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
