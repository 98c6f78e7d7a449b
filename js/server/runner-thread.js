'use strict';
// The development server's runner thread (js/server/runner.js): the asynchronous lambdas
// (run-simulation, filter-population, simulate-chunk) run here, with everything a run does in
// this process (the in-process invocations they make, the chunk pool, the merge, the sweep), so
// that the server's own thread only serves requests and answers `price`.
//
// Messages in: {id, kind: 'invoke', target, event, context} (answered {id, result, tail} or
// {id, error, tail}); {kind: 'event', eventId, target, event, arn, delays, requestId} (an Event:
// retried, answered {eventDone: eventId} once finished); {id, kind: 'idle' | 'sweep' | 'close'}
// (answered {id} when done).

const { parentPort } = require('node:worker_threads');
const { localHandler, runAsEvent, idle } = require('../runtime/invoke');
const { withTail } = require('../runtime/logging');
const { startSweeping } = require('../runtime/scheduler');
const { closeWorkers } = require('../runtime/workers');
const { closeBuses } = require('../runtime/pubsub');

/** What the server's thread needs of an error: its name, message, stack and own fields. */
function errorRecord(e) {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const record = { ...e, name: e.name, message: e.message, stack: e.stack };
  // Only what clones: a cause, a function or a socket stays here.
  for (const [key, value] of Object.entries(record)) if (value !== null && typeof value === 'object') delete record[key];
  return record;
}

let stopSweeping = null;

async function handle(m) {
  switch (m.kind) {
    case 'invoke': {
      const tail = { text: '' };
      try {
        const result = await withTail(tail, () => localHandler(m.target)(m.event, m.context));
        parentPort.postMessage({ id: m.id, result, tail: tail.text });
      } catch (e) {
        parentPort.postMessage({ id: m.id, error: errorRecord(e), tail: tail.text });
      }
      return;
    }
    case 'event':
      // Finished (done, or failed after its retries, or its handler not loading): the server's
      // thread stops keeping it.
      Promise.resolve()
        .then(() => runAsEvent(localHandler(m.target), m.event, m.arn, m.delays, m.requestId))
        .catch((e) => process.stderr.write(`tariffsim: an Event for ${m.target} could not run: ${e && e.message}\n`))
        .finally(() => parentPort.postMessage({ eventDone: m.eventId }));
      return;
    case 'idle':
      await idle();
      break;
    case 'sweep':
      if (stopSweeping === null) stopSweeping = startSweeping();
      break;
    case 'close':
      // As a server's close did before the runner: runs still going stop here and are taken up
      // again by the next server's sweep (docs/pipeline.md), not waited for.
      if (stopSweeping !== null) await stopSweeping();
      stopSweeping = null;
      await closeWorkers();
      await closeBuses();
      break;
    default:
      throw new Error(`the runner has no message kind ${m.kind}`);
  }
  parentPort.postMessage({ id: m.id });
}

parentPort.on('message', (m) => {
  handle(m).catch((e) => parentPort.postMessage({ id: m.id, error: errorRecord(e) }));
});
