'use strict';
// A worker thread of the chunk pool (js/runtime/workers.js): computes chunks of stored runs with
// its own wasm instance and prepared-run cache, stores each chunk's impressions as its object, and
// hands back the counts and partial summary; merges a run's partial summaries (mergeReports),
// which takes the main thread 50 to 140 ms for a run of 100 to 200 chunks; and plans runs
// (filter-population's computation, compute.planPopulation: 50 to 300 ms).

const fs = require('node:fs');
const os = require('node:os');
const { parentPort, workerData } = require('node:worker_threads');
const { openStorage } = require('./storage');
const { keys } = require('./runs');
const { computeAndStoreChunk, planPopulation } = require('./compute');

const stores = new Map();

function storageAt(location, endpoint) {
  const key = `${location}|${endpoint || ''}`;
  let s = stores.get(key);
  if (!s) {
    s = openStorage(location, { endpoint: endpoint || undefined });
    stores.set(key, s);
  }
  return s;
}

/** The first system error code (ENOSPC, ...) in an error's causes: it decides whether a failed write fails the run. */
function systemCode(e) {
  for (let x = e, depth = 0; x && depth < 4; x = x.cause, depth += 1) {
    if (typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code)) return x.code;
  }
  return undefined;
}

// Chunks are background work: this thread runs at a lower CPU priority (a higher nice value, on
// Linux: /proc/thread-self names the thread) than the thread serving requests, so a request never
// waits for a core behind a chunk. Elsewhere, or when refused, it runs as it is.
if (workerData && workerData.nice > 0) {
  try {
    os.setPriority(Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), workerData.nice);
  } catch {
    // not Linux, or not allowed: the default priority
  }
}

/** A run's partial summaries (text, or its UTF-8 bytes) merged into its report files. */
function mergeReports(summaries) {
  const { withEngine } = require('./engine');
  const decoder = new TextDecoder();
  const texts = summaries.map((x) => (typeof x === 'string' ? x : decoder.decode(x)));
  return withEngine(({ wasm }) => wasm.mergeReports(texts));
}

parentPort.on('message', async ({ id, kind, summaries, plan, location, endpoint, runId, index }) => {
  if (kind === 'mergeReports' || kind === 'plan') {
    try {
      parentPort.postMessage({ id, out: kind === 'plan' ? planPopulation(plan) : mergeReports(summaries) });
    } catch (e) {
      parentPort.postMessage({ id, error: { name: e && e.name, message: e && e.message, code: e && e.code, systemCode: systemCode(e), stack: e && e.stack } });
    }
    return;
  }
  try {
    // The chunk's impressions are stored here, fresh from the computation: only counts and the
    // partial summary go back to the calling thread. Once computed, the pool may send the next
    // chunk, which computes while this one stores.
    const out = await computeAndStoreChunk(storageAt(location, endpoint), runId, keys(runId), index, () => parentPort.postMessage({ id, computed: true }));
    // TextEncoder's output owns its ArrayBuffer: both are moved, not copied.
    const moved = /** @type {ArrayBuffer[]} */ ([out.summary.buffer, out.summaryLiteral.buffer]);
    parentPort.postMessage({ id, out }, moved);
  } catch (e) {
    // Errors lose their name and cause crossing threads: send the code, message and system code.
    parentPort.postMessage({ id, error: { name: e && e.name, message: e && e.message, code: e && e.code, systemCode: systemCode(e), stack: e && e.stack } });
  }
});
