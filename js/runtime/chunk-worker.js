'use strict';
// A worker thread of the chunk pool (js/runtime/workers.js): computes chunks of stored runs with
// its own wasm instance and prepared-run cache, and hands the impressions back without a copy.

const { parentPort } = require('node:worker_threads');
const { openStorage } = require('./storage');
const { keys } = require('./runs');
const { computeChunk } = require('./compute');

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

parentPort.on('message', async ({ id, location, endpoint, runId, index }) => {
  try {
    const out = await computeChunk(storageAt(location, endpoint), runId, keys(runId), index);
    let csv = out.csv;
    // Transferable only when the view covers its whole buffer (wasm-bindgen copies out of wasm memory).
    if (csv.byteOffset !== 0 || csv.byteLength !== csv.buffer.byteLength) csv = new Uint8Array(csv);
    parentPort.postMessage({ id, out: { ...out, csv } }, [csv.buffer]);
  } catch (e) {
    // Errors lose their name crossing threads: send the code, message and errno code.
    parentPort.postMessage({ id, error: { name: e && e.name, message: e && e.message, code: e && e.code, stack: e && e.stack } });
  }
});
