'use strict';
// The wasm module and its warm state, shared by the handlers of one process.
//
// The module is loaded and instantiated at module scope (cold start), with one Engine whose cache
// keeps parsed markets and visits in wasm memory. Files are read only when they changed: each is
// remembered by path with its size and mtime and the content key the engine gave it.
//
// After a trap (a panic in Rust is a bug, and leaves the instance unusable) the instance is thrown
// away: the failing request gets a WasmTrap error, and the next request is served by a freshly
// instantiated module whose cache is rebuilt on demand.

const fs = require('node:fs');
const path = require('node:path');
const { codes, typed } = require('./errors');
const { withoutBom, readError } = require('./inputs');

const PKG = path.join(__dirname, '..', '..', 'tariffsim-wasm', 'pkg', 'tariffsim_wasm.js');

/** Where the module's panic hook leaves the panic message (tariffsim_wasm::PANIC_MESSAGE_GLOBAL). */
const PANIC_MESSAGE = '__tariffsimPanicMessage';

let current = null;
let generation = 0;

function instantiate() {
  delete require.cache[PKG];
  const wasm = require(PKG);
  generation += 1;
  return { wasm, engine: new wasm.Engine(), files: new Map(), generation };
}

current = instantiate();

/**
 * Runs `work` with the live instance `{wasm, engine, generation}`. A trap discards the instance
 * and becomes a WasmTrap error.
 * @template T
 * @param {(instance: {wasm: object, engine: object, generation: number}) => T} work
 * @returns {T}
 */
function withEngine(work) {
  if (current === null) current = instantiate();
  const instance = current;
  try {
    return work(instance);
  } catch (e) {
    // A trap (a Rust panic, an out-of-bounds access, running out of memory) or a stack overflow
    // inside wasm leaves the instance unusable.
    if (e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /call stack/i.test(e.message))) {
      if (current === instance) current = null;
      const panic = globalThis[PANIC_MESSAGE];
      delete globalThis[PANIC_MESSAGE];
      const what = typeof panic === 'string' ? panic.replace(/\s+/g, ' ').trim() : e.message;
      throw typed(codes.WasmTrap, `the simulation module trapped (${what}): this is a bug; the module has been discarded and the next request gets a fresh one`, { cause: e });
    }
    throw e;
  }
}

function stat(file, what) {
  let st;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw readError(e, file, what);
  }
  if (!st.isFile()) throw readError(Object.assign(new Error('not a file'), { code: 'EISDIR' }), file, what);
  return st;
}

/**
 * A file's content, handed to `load` only when the file is new or changed since it was last
 * loaded into this instance; returns what `load` returned for it (a content key).
 * @param {{files: Map<string, object>}} instance
 * @param {string} file absolute path
 * @param {string} what for messages (`market`, `visits`, ...)
 * @param {(bytes: Buffer) => string} load
 * @param {(key: string) => boolean} [stillLoaded] whether the engine still holds the key
 */
function loadFile(instance, file, what, load, stillLoaded = () => true, binary = false) {
  const st = stat(file, what);
  const seen = instance.files.get(file);
  if (seen && seen.size === st.size && seen.mtimeMs === st.mtimeMs && stillLoaded(seen.key)) return seen.key;
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw readError(e, file, what);
  }
  // A text file's UTF-8 byte-order mark is accepted and dropped (inputs.js).
  const key = load(binary ? bytes : withoutBom(bytes));
  instance.files.set(file, { size: st.size, mtimeMs: st.mtimeMs, key });
  return key;
}

/** Whether a file exists; a name the system refuses (too long, say) is a typed error. */
function present(file, what) {
  try {
    return fs.statSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch (e) {
    throw readError(e, file, what);
  }
}

/** The snapshot next to a market file (`<file>.snapshot`, made by js/tools/snapshot.js), if any. */
function snapshotOf(file) {
  try {
    return fs.readFileSync(`${file}.snapshot`);
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A market file's key in the instance's engine (read only when new or changed). A snapshot next to
 * it, made from these very bytes, spares parsing the JSON; a stale one is ignored. Where only the
 * snapshot is shipped (`<file>.snapshot` without `<file>`, as in the Lambda zip), it is the market.
 */
function marketFromFile(instance, file) {
  const stillLoaded = (key) => instance.engine.hasMarket(key);
  if (!present(file, 'market') && present(`${file}.snapshot`, 'market snapshot')) {
    return loadFile(instance, `${file}.snapshot`, 'market snapshot', (bytes) => instance.engine.loadMarketSnapshot(bytes), stillLoaded, true);
  }
  return loadFile(instance, file, 'market', (bytes) => instance.engine.loadMarket(bytes, snapshotOf(file)), stillLoaded);
}

/** A visits file's key in the instance's engine (parsed only when new or changed). */
function visitsFromFile(instance, file) {
  return loadFile(instance, file, 'visits', (bytes) => instance.engine.loadVisits(bytes), (key) => instance.engine.hasVisits(key));
}

/** A small text file (spec, scenario), read again only when changed. */
function textFromFile(instance, file, what) {
  return loadFile(instance, file, what, (bytes) => bytes.toString('utf8'));
}

module.exports = {
  withEngine,
  marketFromFile,
  visitsFromFile,
  textFromFile,
  /** The number of instances made so far (1 until a trap). */
  generation: () => generation,
};
