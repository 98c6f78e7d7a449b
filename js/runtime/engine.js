'use strict';
// The wasm modules and their warm state, shared by the handlers of one process.
//
// Two builds of the one binding (scripts/build-wasm): `full` (tariffsim-wasm/pkg: runs, chunks,
// filters, summaries, and every price variant) for simulate-chunk, run-simulation,
// filter-population and the tools; `price` (tariffsim-wasm/pkg-price: only what pricing needs, so
// a cold start compiles less) for the price lambda. Both price with the same code. Each is
// compiled once per process (the price handler starts it during init on V8's background threads:
// `compileAhead`; otherwise on first use) and instantiated on first use, with one Engine whose
// cache keeps parsed markets and visits in wasm memory. A module that cannot be read or compiled
// is a typed InternalError on every use, from the first failure (never compiled again). Files
// are read only when they changed: each is remembered by path with its size and mtime and the
// content key the engine gave it.
//
// After a trap (a panic in Rust is a bug, and leaves the instance unusable) the instance is thrown
// away: the failing request gets a WasmTrap error, and the next request is served by a fresh
// instance of the compiled module whose cache is rebuilt on demand.

const fs = require('node:fs');
const { codes, typed, asError } = require('./errors');
const { publicPath, fromRoot } = require('./paths');
const { withoutBom, readError } = require('./inputs');
const { nowMs } = require('./logging');

/** How long a bundled market file is taken as unchanged without looking at the disk again. */
const TASK_FILE_RECHECK_MS = 1000;

/** Each build's glue (a factory of instances: js/tools/wasm-glue.js) and its .wasm. */
const BUILDS = {
  full: { glue: fromRoot('tariffsim-wasm', 'pkg', 'tariffsim_wasm.js'), wasm: fromRoot('tariffsim-wasm', 'pkg', 'tariffsim_wasm_bg.wasm') },
  price: { glue: fromRoot('tariffsim-wasm', 'pkg-price', 'tariffsim_price.js'), wasm: fromRoot('tariffsim-wasm', 'pkg-price', 'tariffsim_price_bg.wasm') },
};

/** Where the module's panic hook leaves the panic message (tariffsim_wasm::PANIC_MESSAGE_GLOBAL). */
const PANIC_MESSAGE = '__tariffsimPanicMessage';

/** The live instance of each build, made on first use. */
const current = { full: null, price: null };
/** Each build's compiled module: compiled once per process, instantiated again after a trap. */
const modules = { full: null, price: null };
/** Each build's compilation in flight (compileAhead). */
const compiling = { full: null, price: null };
/** Each build's failure to load (a typed error), once it failed: thrown on every use. */
const failed = { full: null, price: null };
/** 1, plus one for each instance discarded after a trap. */
let generation = 1;

/** A build's glue: the price build's by a literal path, so the price handler's bundle carries it. */
function glueOf(kind) {
  return kind === 'price' ? require('../../tariffsim-wasm/pkg-price/tariffsim_price.js') : require(BUILDS.full.glue);
}

/** The typed error of a build that cannot be read or compiled (kept: every use throws it). */
function loadFailure(kind, cause) {
  failed[kind] = typed(codes.InternalError, `the ${kind} wasm module ${publicPath(BUILDS[kind].wasm)} could not be loaded (${cause.name}: ${cause.message}): the deployment is broken; build it again with scripts/build-wasm`, { cause });
  return failed[kind];
}

/** A build's compiled module (compiled here, on this thread, unless compileAhead has done it). */
function moduleOf(kind) {
  if (failed[kind] !== null) throw failed[kind];
  if (modules[kind] === null) {
    try {
      modules[kind] = new WebAssembly.Module(fs.readFileSync(BUILDS[kind].wasm));
    } catch (e) {
      throw loadFailure(kind, asError(e));
    }
  }
  return modules[kind];
}

function instantiate(kind) {
  const module = moduleOf(kind);
  let wasm;
  try {
    wasm = glueOf(kind)(module);
  } catch (e) {
    // A module that compiles but does not link or start (its glue from another build, say): the
    // deployment is broken, as for one that does not compile, but it is tried again next time,
    // with the full build's glue read again (it may have been caught half-written by a rebuild).
    if (kind === 'full') delete require.cache[BUILDS.full.glue];
    throw typed(codes.InternalError, `the ${kind} wasm module ${publicPath(BUILDS[kind].wasm)} could not be instantiated (${asError(e).name}: ${asError(e).message}): the deployment is broken; build it again with scripts/build-wasm`, { cause: e });
  }
  // `tables`: the text of compiled markets by serial number (priceAnswer).
  // `recent`: bundled market files by path, with their key and when they were last looked at.
  return { kind, wasm, engine: new wasm.Engine(), files: new Map(), tables: new Map(), recent: new Map(), generation };
}

/**
 * Starts compiling a build on V8's background threads (WebAssembly.compile validates the module
 * there) while the caller's cold start goes on, and instantiates it once compiled. The price
 * handler calls it first thing and waits for it before its first request: its module scope runs
 * meanwhile, instead of after a compilation on the main thread. A module file that cannot be read
 * throws here (a Lambda init then fails, as a broken zip should). The promise never rejects: a
 * module that fails to compile is then an InternalError on every use, one that fails to
 * instantiate fails again, with its error, on first use.
 * @param {'full'|'price'} kind
 * @returns {Promise<void>}
 */
function compileAhead(kind) {
  if (current[kind] !== null || modules[kind] !== null || failed[kind] !== null) return Promise.resolve();
  if (compiling[kind] === null) {
    let bytes;
    try {
      bytes = fs.readFileSync(BUILDS[kind].wasm);
    } catch (e) {
      throw loadFailure(kind, asError(e));
    }
    compiling[kind] = WebAssembly.compile(bytes)
      .then(
        (compiled) => {
          if (modules[kind] === null) modules[kind] = compiled;
          preload(kind);
        },
        (e) => {
          if (modules[kind] === null) loadFailure(kind, asError(e));
        },
      )
      .catch(() => {})
      .finally(() => {
        compiling[kind] = null;
      });
  }
  return compiling[kind];
}

/**
 * Instantiates a build now (at a handler's module scope) rather than on its first call.
 * @param {'full'|'price'} [kind]
 */
function preload(kind = 'full') {
  if (current[kind] === null) current[kind] = instantiate(kind);
}

/**
 * Runs `work` with the live instance `{wasm, engine, generation}` of a build (`full` by default,
 * or `price`). A trap discards the instance and becomes a WasmTrap error.
 * @template T
 * @param {(instance: {kind: string, wasm: any, engine: any, files: Map<string, LoadedFile>, tables: Map<number, object>, recent: Map<string, {key: string, at: number}>, generation: number}) => T} work
 * @param {'full'|'price'} [kind]
 * @returns {T}
 */
function withEngine(work, kind = 'full') {
  preload(kind);
  const instance = current[kind];
  try {
    return work(instance);
  } catch (e) {
    // A trap (a Rust panic, an out-of-bounds access, running out of memory) or a stack overflow
    // inside wasm leaves the instance unusable.
    if (e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /call stack/i.test(e.message))) {
      if (current[kind] === instance) {
        current[kind] = null;
        generation += 1;
      }
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

/** @typedef {{size: number, mtimeMs: number, key: string}} LoadedFile a file loaded into an instance: its size and time when read, and its content key */

/**
 * A file's content, handed to `load` only when the file is new or changed since it was last
 * loaded into this instance; returns what `load` returned for it (a content key).
 * @param {{files: Map<string, LoadedFile>}} instance
 * @param {string} file absolute path
 * @param {string} what for messages (`market`, `visits`, ...)
 * @param {(bytes: Buffer) => string} load
 * @param {(key: string) => boolean} [stillLoaded] whether the engine still holds the key
 * @param {boolean} [binary] hand the bytes over as they are (no byte-order mark to drop)
 * @param {fs.Stats} [known] the file's stats, when the caller has just taken them
 */
function loadFile(instance, file, what, load, stillLoaded = () => true, binary = false, known = undefined) {
  // `known`: the file's stats when the caller has just taken them (one stat per warm call).
  const st = known !== undefined && known.isFile() ? known : stat(file, what);
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

/** A file's stats, or undefined when it does not exist; a name the system refuses (too long, say) is a typed error. */
function present(file, what) {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch (e) {
    throw readError(e, file, what);
  }
}

/**
 * The snapshot next to a market file (`<file>.snapshot`, made by js/tools/snapshot.js), if any. A
 * snapshot is a cache of the JSON beside it: one that cannot be read (a folder of that name, no
 * permission) is passed over like a stale one, and the JSON is parsed.
 */
function snapshotOf(file) {
  try {
    return fs.readFileSync(`${file}.snapshot`);
  } catch {
    return undefined;
  }
}

/**
 * A market file's key in the instance's engine (read only when new or changed). A snapshot next to
 * it, made from these very bytes, spares parsing the JSON; a stale or damaged one is ignored. Where
 * only the snapshot is shipped (`<file>.snapshot` without `<file>`, as in the Lambda zip), it is
 * the market.
 *
 * The markets bundled in the zip (`bundled`: the `sample` of a `price` without
 * TARIFFSIM_MARKETS_DIR, read-only files in Lambda) are looked at on disk at most once every
 * TASK_FILE_RECHECK_MS per instance; any other market file (TARIFFSIM_MARKETS_DIR, a run's data
 * folder, wherever it lies) on every call, so an edit shows at once. A warm call on a bundled
 * market then makes no system call (two `stat`s, about 5 us, otherwise).
 * @param {{files: Map<string, LoadedFile>, recent: Map<string, {key: string, at: number, evicted?: number}>, engine: any}} instance
 * @param {string} file absolute path
 * @param {boolean} [bundled] the file is one of the zip's own markets
 */
function marketFromFile(instance, file, bundled = false) {
  if (bundled) {
    const recent = instance.recent.get(file);
    // No market has left the engine's cache since: this one is still loaded (no key passed to ask).
    if (recent !== undefined && nowMs() - recent.at < TASK_FILE_RECHECK_MS && recent.evicted === instance.engine.marketsEvicted()) return recent.key;
  }
  const key = marketFromDisk(instance, file, (k) => instance.engine.hasMarket(k));
  if (bundled) instance.recent.set(file, { key, at: nowMs(), evicted: instance.engine.marketsEvicted() });
  return key;
}

function marketFromDisk(instance, file, stillLoaded) {
  const json = present(file, 'market');
  if (json === undefined) {
    const snapshot = present(`${file}.snapshot`, 'market snapshot');
    if (snapshot !== undefined) {
      return loadFile(instance, `${file}.snapshot`, 'market snapshot', (bytes) => instance.engine.loadMarketSnapshot(bytes), stillLoaded, true, snapshot);
    }
  }
  return loadFile(instance, file, 'market', (bytes) => instance.engine.loadMarket(bytes, snapshotOf(file)), stillLoaded, false, json);
}

/** A visits file's key in the instance's engine (parsed only when new or changed). */
function visitsFromFile(instance, file) {
  return loadFile(instance, file, 'visits', (bytes) => instance.engine.loadVisits(bytes), (key) => instance.engine.hasVisits(key));
}

/** A small text file (spec, scenario), read again only when changed. */
function textFromFile(instance, file, what) {
  return loadFile(instance, file, what, (bytes) => bytes.toString('utf8'));
}

/** At most the UTF-8 bytes of a string's JSON: 6 per UTF-16 unit (`\\uXXXX`), and the quotes. */
const jsonBytesAtMost = (s) => 6 * s.length + 2;
/** At most the bytes of a row's or a table's JSON beside its strings (field names, numbers). */
const ROW_BYTES = 400;

/** A compiled market's text from Engine.indexTables, with bounds of its rows' JSON sizes. */
function tablesOf(instance, serial) {
  let text = instance.tables.get(serial);
  if (text === undefined) {
    text = JSON.parse(instance.engine.indexTables(serial));
    text.rowBytes = text.tariffs.map((t) => ROW_BYTES + jsonBytesAtMost(t[0]) + jsonBytesAtMost(t[1]) + jsonBytesAtMost(t[2]));
    text.marketBytes = 3 * JSON.stringify(text.market).length;
    // Compiled markets leave the engine's cache in time; their serials are never reused.
    if (instance.tables.size >= 64) instance.tables.delete(instance.tables.keys().next().value);
    instance.tables.set(serial, text);
  }
  return text;
}

/** A profile's text fields, in the order `Engine.priceFields` reads them. */
const PROFILE_TEXTS = ['visit_id', 'timestamp', 'region', 'fuel', 'meter', 'payment_method', 'current_supplier', 'current_tariff'];
/** A profile's number fields, in that order, after its texts. */
const PROFILE_NUMBERS = ['elec_kwh', 'gas_kwh', 'e7_night_share'];
/** The filters, each a bit: 1, 2, 4, 8. */
const FILTER_BITS = new Map([['fixed_only', 1], ['green_only', 2], ['no_exit_fees', 4], ['switchable_only', 8]]);
/** Every field a profile may have (the core's PROFILE_FIELDS). */
const PROFILE_KEYS = new Set([...PROFILE_TEXTS, ...PROFILE_NUMBERS, 'filters']);
/** Numbers per profile in `profileFields`'s `fields` (tariffsim-wasm PROFILE_NUMBERS). */
const NUMBERS_PER_PROFILE = PROFILE_TEXTS.length + PROFILE_NUMBERS.length + 1;

/**
 * Profiles as `Engine.priceFields` reads them, without JSON: per profile, each text field's length
 * in UTF-16 code units (-1 when absent or null) with its text appended to `text`, each number
 * (NaN when absent or null), and the filters as bits. Null when a profile is not in the form
 * the JSON would read without complaint (an unknown field, a value of another kind, text that is not
 * well-formed UTF-16, no region): such profiles are priced from their JSON, whose error names the
 * field at fault. The same profiles either way are the same profiles to the core.
 * @param {Array<Record<string, any>>} profiles objects (the handler checks that)
 * @returns {{fields: Float64Array, text: string} | null}
 */
function profileFields(profiles) {
  const fields = new Float64Array(profiles.length * NUMBERS_PER_PROFILE);
  let text = '';
  let at = 0;
  for (const given of profiles) {
    // A plain object's own enumerable fields, each read once, as JSON.stringify reads them (an
    // inherited field, a class instance or a toJSON would be read otherwise: by JSON).
    const p = ownFields(given, PROFILE_KEYS);
    if (p === null) return null;
    for (const key of PROFILE_TEXTS) {
      const v = p[key];
      if (v === undefined || v === null) {
        if (key === 'region') return null;
        fields[at++] = -1;
      } else if (typeof v === 'string' && v.isWellFormed()) {
        fields[at++] = v.length;
        text += v;
      } else {
        return null;
      }
    }
    for (const key of PROFILE_NUMBERS) {
      const v = p[key];
      if (v === undefined || v === null) fields[at++] = NaN;
      // + 0: -0 reads as 0, as its JSON does.
      else if (typeof v === 'number' && Number.isFinite(v)) fields[at++] = v + 0;
      else return null;
    }
    let bits = 0;
    if (p.filters !== undefined) {
      const filters = ownFields(p.filters, FILTER_BITS);
      if (filters === null) return null;
      for (const key of Object.keys(filters)) {
        const v = filters[key];
        if (typeof v !== 'boolean' && v !== undefined) return null;
        if (v === true) bits |= /** @type {number} */ (FILTER_BITS.get(key));
      }
    }
    fields[at++] = bits;
  }
  return { fields, text };
}

/**
 * A plain object's own enumerable fields as a fresh object with no prototype (each read once),
 * or null for anything else: not an object, a list, a class instance, a field not in `known`
 * (`toJSON` among them).
 * @param {unknown} value
 * @param {{has: (key: string) => boolean}} known
 * @returns {Record<string, any> | null}
 */
function ownFields(value, known) {
  if (value === null || typeof value !== 'object') return null;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return null;
  const out = Object.create(null);
  for (const key of Object.keys(value)) {
    if (!known.has(key)) return null;
    out[key] = value[key];
  }
  return out;
}

/**
 * The `price` answer `{market, results}` for profiles on a loaded market, from the engine's answer
 * in numbers (Engine.priceFields, or Engine.priceCompact from the profiles' JSON when they are not
 * all in the form `profileFields` passes) and the compiled market's text, fetched once per compiled
 * market (Engine.indexTables): the same answer Engine.priceJson gives, with no JSON written in wasm
 * or parsed here. Objects are built with their fields in the order of the core's types.
 * `bytesAtMost` bounds the size of the answer's JSON (for Lambda's limit).
 * @param {{engine: any, tables: Map<number, object>}} instance
 * @param {{key: string, scenario?: Buffer, hypothetical?: Buffer, profiles: Array<Record<string, any>>, profilesJson?: Buffer, pageSize: number, seed: number, showCurrentTariff: boolean, wholeOfMarket: boolean}} call
 *   the market's key, the scenario's JSON, the hypothetical tariffs' JSON, the profiles (and their
 *   JSON, made here when needed and not given), and the options
 * @returns {{answer: {market: object, results: object[]}, bytesAtMost: number}}
 */
function priceAnswer(instance, call) {
  const { engine } = instance;
  const { key } = call;
  const given = profileFields(call.profiles);
  const out =
    given !== null
      ? engine.priceFields(key, call.scenario, call.hypothetical, given.fields, given.text, call.pageSize, call.seed, call.showCurrentTariff, call.wholeOfMarket)
      : engine.priceCompact(key, call.scenario, call.hypothetical, call.profilesJson || Buffer.from(JSON.stringify(call.profiles)), call.pageSize, call.seed, call.showCurrentTariff, call.wholeOfMarket);
  // Each visit id is the profile's own as given (the engine says which), unless it was defaulted
  // or trimmed: only then are the ids fetched.
  let ids;
  const text = tablesOf(instance, out[0]);
  const { tariffs, hypothetical: hypotheticalIds, rowBytes } = text;
  const nan = (x) => (Number.isNaN(x) ? null : x);
  const results = new Array(out[1]);
  let bytes = text.marketBytes + jsonBytesAtMost(key) + ROW_BYTES;
  let i = 2;
  for (let p = 0; p < results.length; p++) {
    const current = out[i + 1];
    if (out[i + 5] !== 1 && ids === undefined) ids = engine.lastVisitIds();
    const table = {
      visit_id: out[i + 5] === 1 ? call.profiles[p].visit_id : ids[p],
      current_cost_gbp: nan(out[i]),
      current_tariff_id: current < 0 ? null : tariffs[current][0],
      switch_cost_gbp: nan(out[i + 2]),
      eligible: out[i + 3],
      rows: new Array(out[i + 4]),
      hypothetical: new Array(hypotheticalIds.length),
    };
    i += 6;
    bytes += ROW_BYTES + jsonBytesAtMost(table.visit_id) + (current < 0 ? 0 : rowBytes[current]);
    for (let r = 0; r < table.rows.length; r++, i += 4) {
      bytes += rowBytes[out[i]];
      const t = tariffs[out[i]];
      table.rows[r] = {
        rank: r + 1,
        tariff_id: t[0],
        supplier: t[1],
        name: t[2],
        kind: t[3],
        green: t[4],
        switchable: t[5],
        hypothetical: t[6],
        exit_fee_gbp: out[i + 3],
        annual_cost_gbp: out[i + 1],
        saving_gbp: nan(out[i + 2]),
      };
    }
    for (let h = 0; h < hypotheticalIds.length; h++, i += 4) {
      const rank = out[i];
      bytes += rowBytes[hypotheticalIds[h]];
      table.hypothetical[h] = {
        tariff_id: tariffs[hypotheticalIds[h]][0],
        eligible: rank > 0,
        rank: rank > 0 ? rank : null,
        on_page: out[i + 3] === 1,
        annual_cost_gbp: nan(out[i + 1]),
        saving_gbp: nan(out[i + 2]),
      };
    }
    results[p] = table;
  }
  return { answer: { market: { key, ...text.market }, results }, bytesAtMost: bytes };
}

module.exports = {
  withEngine,
  preload,
  compileAhead,
  priceAnswer,
  profileFields,
  marketFromFile,
  visitsFromFile,
  textFromFile,
  /** 1, plus one for each instance discarded after a trap. */
  generation: () => generation,
};
