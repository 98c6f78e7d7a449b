'use strict';
// `npm run bench`: the speed figures of the Lambda side, each printed against a baseline measured
// in the same run (this machine kind is noisy; ratios travel, absolute numbers less so).
//
//   cold start   a fresh node that requires js/price.js, waits for its `ready` (the end of init)
//                and answers one `price` request, from a task root laid out as the zip, against
//                a bare node that answers at once (both timed from spawn to the answer; a Lambda
//                instance does not exit after it)
//                                          target: <= +10 ms, and below the plain JS kernel's
//                and, for reference, the bundle without its code cache (js/price.bundle.*.cache), the
//                same in-process (from the require to the answer, node's
//                own start left out) against the JS kernel's, with the bundle's parts, the
//                WebAssembly path alone (module, Engine, snapshot, one price; no handler), and the
//                JS kernel inside the price handler's wrapper, joined into one file as the bundle
//                is (handler for handler, as the warm rows compare), also with a code cache made as
//                the bundle's is. Every node of these rows starts
//                with the V8 flags Lambda's Node.js runtime gives it (bundle.js lambdaNodeFlags:
//                --expose-gc and heap sizes), as a cold start in Lambda does; a reference row gives
//                bare node without them
//   warm price   p50 and p99 over >= 10,000 calls through the whole handler, JSON in and out,
//                on the sample market, against the same handler path around a plain JavaScript
//                kernel (js-kernel.js: the same rules and answers), the handlers taking turns
//                in blocks of 500 calls so that both see the machine alike
//                                          target: p50 <= 0.6x the JS kernel's, p99 <= 100 us
//                and, for reference, a plain loop sized to the wasm handler's p50 timed alike:
//                the machine's own tail for a task of that length; in a node started with the
//                price function's V8 flags in Lambda, as the cold rows are
//   replay       profiles/s on one core, wasm (the full build simulate-chunk loads) against
//                native (`tariffsim bench`), and against the plain JavaScript kernel
//                                          target: >= 0.6x native
//   size         the .wasm the price lambda loads (pkg-price), raw and gzipped; the full build's
//                                          target: <= 250 KB raw
//
//   npm run bench [-- --calls 20000 --cold 15 --profiles 500000 --only size,cold,warm,replay]
//   (--calls 1 to 1,000,000, fewer than 10,000 count as 10,000; --cold 1 to 1,000; --profiles 1 to
//   10,000,000: anything else is a usage error, exit 2)

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
/** The node flags of every cold row: those Lambda's runtime starts the price function's node with. */
const PRICE_NODE_FLAGS = require('./bundle').PRICE_NODE_FLAGS;
const WASM = path.join(ROOT, 'tariffsim-wasm', 'pkg', 'tariffsim_wasm_bg.wasm');
const PRICE_WASM = path.join(ROOT, 'tariffsim-wasm', 'pkg-price', 'tariffsim_price_bg.wasm');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const SAMPLE = path.join(ROOT, 'data', 'sample');
const EVENT = path.join(ROOT, 'tests', 'fixtures', 'lambda', 'price-sample.json');
const CONTEXT = path.join(ROOT, 'tests', 'fixtures', 'lambda', 'context-prod.json');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const rows = [];
function row(measurement, value, baseline, ratio, target) {
  rows.push([measurement, value, baseline, ratio, target]);
}

// ---- child modes -------------------------------------------------------------------------------

// Each child reports the CPU it used up to its answer (user + system, all threads, ms): on a busy
// machine CPU time varies less than the wall clock.
const CPU = 'const CPU = () => { const c = process.cpuUsage(); return ((c.user + c.system) / 1000).toFixed(2); }';
// Milliseconds since a process.hrtime.bigint() mark, as text.
const SINCE = 'const since = (t) => (Number(process.hrtime.bigint() - t) / 1e6).toFixed(2)';
// A cold start: require the handler from a task root, answer one request. It reports its CPU, the
// first request's time and, in-process, the time from the require to the answer, with its parts.
const coldWasm = (root) => `${CPU}; ${SINCE};
const t0 = process.hrtime.bigint();
const { handler, ready } = require(${JSON.stringify(path.join('ROOT', 'js', 'price.js'))}.replace('ROOT', ${JSON.stringify(root)}));
const required = since(t0);
const event = JSON.parse(${JSON.stringify(fs.readFileSync(EVENT, 'utf8'))});
// The end of init (the module compiled and instantiated, and primed when asked), then the request.
ready.then(() => {
  const t = process.hrtime.bigint();
  const init = since(t0);
  return handler(event, ${fs.readFileSync(CONTEXT, 'utf8')}).then((r) => { const first = since(t); const total = since(t0); const cpu = CPU(); process.stderr.write(r.results[0].rows.length ? \`ANSWER \${cpu} \${first} \${total} \${required} \${init}\\n\` : 'EMPTY\\n'); });
});
`;
// The same with the plain JavaScript kernel: read and parse the market, compile, price.
const COLD_JS = `${CPU}; ${SINCE};
const fs = require('node:fs');
const t0 = process.hrtime.bigint();
// The kernel as its own file (it finds the TDCV table from its own folder), as the kernel row loads it.
const kernelFile = ${JSON.stringify(path.join(__dirname, 'js-kernel.js'))};
const kernel = require(kernelFile);
const m = kernel.compileMarket(JSON.parse(fs.readFileSync(${JSON.stringify(path.join(SAMPLE, 'market.json'))}, 'utf8')));
const event = JSON.parse(${JSON.stringify(fs.readFileSync(EVENT, 'utf8'))});
const rows = kernel.price(m, event.profiles, 10)[0].rows.length;
const total = since(t0);
process.stderr.write(rows ? \`ANSWER \${CPU()} - \${total}\\n\` : 'EMPTY\\n');
`;
// The plain JavaScript kernel inside the price handler's own wrapper (configuration, logging, the
// input's checks, JSON in and out: wrapHandler, as the warm rows' JS baseline), joined into one
// file by esbuild as the bundle is (jsHandlerBundles): handler against handler, WebAssembly against
// JavaScript, at a cold start. Its module scope parses and compiles the market, as a Lambda's would.
const coldJsHandler = (file) => `${CPU}; ${SINCE};
const t0 = process.hrtime.bigint();
const { handler } = require(${JSON.stringify(file)});
const event = JSON.parse(${JSON.stringify(fs.readFileSync(EVENT, 'utf8'))});
handler(event, ${fs.readFileSync(CONTEXT, 'utf8')}).then((r) => { const total = since(t0); process.stderr.write(r.results[0].rows.length ? \`ANSWER \${CPU()} - \${total}\\n\` : 'EMPTY\\n'); });
`;
const BARE = `${CPU}; process.stderr.write(\`ANSWER \${CPU()}\\n\`)`;
// The WebAssembly path alone, without the handler around it: the price module compiled
// (asynchronously, as the handler does), instantiated, an Engine, the task root's market snapshot
// loaded, one price and the compiled market's text. What the bundle takes beyond this is the
// handler's JavaScript (runtime, configuration, logging, checks, the answer's objects).
const coldWasmAlone = (root) => `${CPU}; ${SINCE};
const fs = require('node:fs');
const t0 = process.hrtime.bigint();
WebAssembly.compile(fs.readFileSync(${JSON.stringify(path.join('ROOT', 'tariffsim-wasm', 'pkg-price', 'tariffsim_price_bg.wasm'))}.replace('ROOT', ${JSON.stringify(root)}))).then((module) => {
  const wasm = require(${JSON.stringify(path.join('ROOT', 'tariffsim-wasm', 'pkg-price', 'tariffsim_price.js'))}.replace('ROOT', ${JSON.stringify(root)}))(module);
  const engine = new wasm.Engine();
  const key = engine.loadMarketSnapshot(fs.readFileSync(${JSON.stringify(path.join('ROOT', 'data', 'sample', 'market.json.snapshot'))}.replace('ROOT', ${JSON.stringify(root)})));
  const event = JSON.parse(${JSON.stringify(fs.readFileSync(EVENT, 'utf8'))});
  // The profiles by their fields, as the handler passes them (engine.js profileFields), inline.
  const texts = ['visit_id', 'timestamp', 'region', 'fuel', 'meter', 'payment_method', 'current_supplier', 'current_tariff'];
  const bits = { fixed_only: 1, green_only: 2, no_exit_fees: 4, switchable_only: 8 };
  const fields = [];
  let text = '';
  for (const p of event.profiles) {
    for (const k of texts) if (typeof p[k] === 'string') { fields.push(p[k].length); text += p[k]; } else fields.push(-1);
    for (const k of ['elec_kwh', 'gas_kwh', 'e7_night_share']) fields.push(typeof p[k] === 'number' ? p[k] : NaN);
    fields.push(Object.keys(p.filters || {}).reduce((b, k) => (p.filters[k] ? b | bits[k] : b), 0));
  }
  const out = engine.priceFields(key, undefined, undefined, new Float64Array(fields), text, 10, 0, false, true);
  const tables = JSON.parse(engine.indexTables(out[0]));
  const total = since(t0);
  process.stderr.write(out[6] > 0 && tables.tariffs.length > 0 ? \`ANSWER \${CPU()} - \${total}\\n\` : 'EMPTY\\n');
});
`;

async function warmChild(calls) {
  const { handler } = require('../price');
  const { wrapHandler } = require('../runtime/wrap-handler');
  const kernel = require('./js-kernel');
  const market = kernel.compileMarket(JSON.parse(fs.readFileSync(path.join(SAMPLE, 'market.json'), 'utf8')));
  const jsHandler = wrapHandler('price-js', (input) => ({ results: kernel.price(market, input.profiles, input.page_size || 10) }));
  const emptyHandler = wrapHandler('empty', (input) => ({ results: [{ visit_id: input.profiles[0].visit_id, rows: [] }] }));
  const context = JSON.parse(fs.readFileSync(CONTEXT, 'utf8'));
  const base = JSON.parse(fs.readFileSync(EVENT, 'utf8'));
  // Payloads as the Lambda runtime receives them, each profile a little different.
  const payloads = Array.from({ length: 1000 }, (_, i) => {
    const e = structuredClone(base);
    e.profiles[0].elec_kwh = 1500 + ((i * 37) % 3000);
    e.profiles[0].gas_kwh = 6000 + ((i * 91) % 9000);
    return JSON.stringify(e);
  });
  async function measure(h, n, times) {
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      const out = JSON.stringify(await h(JSON.parse(payloads[i % payloads.length]), context));
      times.push(Number(process.hrtime.bigint() - t) / 1000);
      bytes += out.length;
    }
    if (bytes === 0) throw new Error('no output');
  }
  // The machine's own tail: a fixed computation (a plain loop, no allocation, no I/O) sized to
  // take the wasm handler's p50, timed the same way. Its p99 is what this machine does to a task
  // of that length; a handler's p99 cannot read much below it.
  let spinRounds = 1000;
  let sink = 0;
  const spin = async () => {
    let x = 0;
    for (let i = 0; i < spinRounds; i++) x += Math.sqrt(i + sink);
    sink = x > 0 ? 1 : 0;
    return { results: [] };
  };
  /** @type {Array<[string, (event: unknown, context?: object) => Promise<unknown>]>} */
  const handlers = [['wasm', handler], ['js', jsHandler], ['empty', emptyHandler], ['spin', spin]];
  for (const [, h] of handlers) await measure(h, Math.min(2000, calls), []);
  const median = async (h) => {
    const t = [];
    await measure(h, 1000, t);
    return t.sort((a, b) => a - b)[t.length >> 1];
  };
  for (let i = 0; i < 3; i++) spinRounds = Math.max(1, Math.round((spinRounds * (await median(handler))) / (await median(spin))));
  // Interleaved in blocks of 500 calls, so that a change in the machine's speed during the run
  // (other processes, CPU frequency) weighs on the handlers alike and the ratios stay meaningful.
  const times = Object.fromEntries(handlers.map(([name]) => [name, []]));
  for (let done = 0; done < calls; done += 500) {
    for (const [name, h] of handlers) await measure(h, Math.min(500, calls - done), times[name]);
  }
  const result = {};
  for (const [name] of handlers) {
    const t = times[name].sort((a, b) => a - b);
    result[name] = { p50: pct(t, 0.5), p99: pct(t, 0.99), max: t[t.length - 1] };
  }
  process.stderr.write(`WARM ${JSON.stringify(result)}\n`);
}

function replayChild(profiles) {
  const { withEngine } = require('../runtime/engine');
  const kernel = require('./js-kernel');
  const spec = JSON.parse(fs.readFileSync(path.join(SAMPLE, 'run.json'), 'utf8'));
  spec.sample_size = profiles;
  const scenarioText = spec.scenario ? fs.readFileSync(path.join(SAMPLE, spec.scenario), 'utf8') : undefined;
  const out = {};
  withEngine(({ engine }) => {
    const m = engine.loadMarket(fs.readFileSync(path.join(SAMPLE, spec.market)));
    const v = engine.loadVisits(fs.readFileSync(path.join(SAMPLE, spec.visits)));
    const run = engine.prepareRun(JSON.stringify(spec), m, scenarioText, v);
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      for (let i = 0; i < run.chunk_count; i++) engine.chunkSummary(run.key, i);
      best = Math.min(best, performance.now() - t);
    }
    out.wasm = profiles / (best / 1000);
    best = Infinity;
    let bytes = 0;
    for (let r = 0; r < 2; r++) {
      const t = performance.now();
      for (let i = 0; i < run.chunk_count; i++) bytes += engine.chunk(run.key, i).impressions_csv.byteLength;
      best = Math.min(best, performance.now() - t);
    }
    if (bytes === 0) throw new Error('the wasm chunks wrote no impressions');
    out.wasmCsv = profiles / (best / 1000);
    out.population = run.population;
  });
  // The plain JavaScript kernel on the same population (all visits: the sample spec keeps them all).
  const scenario = scenarioText ? JSON.parse(scenarioText) : { changes: [] };
  const added = scenario.changes.filter((c) => c.op === 'add_tariff').map((c) => c.tariff);
  const market = kernel.compileMarket(JSON.parse(fs.readFileSync(path.join(SAMPLE, spec.market), 'utf8')), added);
  const [header, ...lines] = fs.readFileSync(path.join(SAMPLE, spec.visits), 'utf8').trimEnd().split('\n');
  const cols = header.split(',');
  const population = lines.map((line, n) => {
    // Profile n of the sample, with its tie key, on the market (the defaults of its date).
    const r = Object.fromEntries(line.split(',').map((x, i) => [cols[i], x]));
    return kernel.profileOf({
      region: r.region, fuel: r.fuel, meter: r.meter || undefined, payment_method: r.payment_method,
      elec_kwh: r.elec_kwh ? Number(r.elec_kwh) : undefined, gas_kwh: r.gas_kwh ? Number(r.gas_kwh) : undefined,
      e7_night_share: r.e7_night_share ? Number(r.e7_night_share) : undefined,
      current_supplier: r.current_supplier || undefined, current_tariff: r.current_tariff || undefined,
      filters: { fixed_only: r.fixed_only === 'true', green_only: r.green_only === 'true', no_exit_fees: r.no_exit_fees === 'true', switchable_only: r.switchable_only === 'true' },
    }, n, market, spec.seed || 0);
  });
  const n = Math.min(profiles, 200000);
  const sampled = Array.from({ length: n }, (_, j) => population[(j * 7919) % population.length]);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    kernel.replay(market, sampled, spec.page_size || 10);
    best = Math.min(best, performance.now() - t);
  }
  out.js = n / (best / 1000);
  process.stderr.write(`REPLAY ${JSON.stringify(out)}\n`);
}

/** A child mode in a node of its own, started with `flags`. */
function child(mode, flags, ...args) {
  const out = spawnSync(process.execPath, [...flags, __filename, `--child-${mode}`, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 26 });
  const tag = mode.toUpperCase();
  const line = out.stderr.split('\n').find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`bench ${mode} failed:\n${out.stderr}`);
  return JSON.parse(line.slice(tag.length + 1));
}

// ---- main ---------------------------------------------------------------------------------------

/**
 * Milliseconds from spawning `node ARGS` to its answer (the line `ANSWER <cpu ms> [<first request
 * ms>|-] [<in-process ms> [<require ms> <init ms>]]` on stderr), and the CPU the child used until
 * then: a Lambda instance answers and stays up, so the process's exit is not part of a cold start.
 * @returns {Promise<{wall: number, cpu: number, first: number, inProcess: number, required: number, init: number}>}
 */
function timeSpawn(args, env = process.env, flags = PRICE_NODE_FLAGS) {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const child = spawn(process.execPath, [...flags, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT, env });
    let err = '';
    let answered = false;
    child.stderr.on('data', (d) => {
      err += d;
      const m = /ANSWER ([0-9.]+)(.*)\n/.exec(err);
      if (!answered && m) {
        answered = true;
        // A field not given (the bare child's) or given as '-' (the JS kernel's first request) is NaN.
        const [first, inProcess, required, init] = [...m[2].split(' ').filter(Boolean), '-', '-', '-', '-'].map(Number);
        resolve({ wall: Number(process.hrtime.bigint() - t) / 1e6, cpu: Number(m[1]), first, inProcess, required, init });
      }
    });
    child.on('exit', () => { if (!answered) reject(new Error(`node ${args.join(' ').slice(0, 60)} gave no answer:\n${err}`)); });
  });
}

/**
 * The plain JS kernel in the price handler's wrapper, joined with its runtime modules (from `task`,
 * laid out as the zip) and the kernel itself into one CommonJS file by esbuild, minified as the
 * bundle is: `task`/js/price-js.js; and the same behind a loader with its code cache, made as the
 * zip's price handler's is (bundle.js codeCache): `task`/js/price-js-cached.js. See coldJsHandler.
 * @param {string} task
 * @param {Map<string, Buffer>} files the task's files (bundleFiles)
 * @returns {{plain: string, cached: string}} the files
 */
function jsHandlerBundles(task, files) {
  const { joinedHandler, wrappedForLoader, codeCacheName, codeCacheLoader, codeCache } = require('./bundle');
  // The kernel reads the TDCV table from its folder's ../../data/domain: js/runtime's, joined.
  const table = path.join('data', 'domain', 'tdcv.csv');
  fs.mkdirSync(path.join(task, 'data', 'domain'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, table), path.join(task, table));
  const source = `'use strict';
const fs = require('node:fs');
const { wrapHandler } = require('./js/runtime/wrap-handler');
const kernel = require(${JSON.stringify(path.join(__dirname, 'js-kernel.js'))});
const market = kernel.compileMarket(JSON.parse(fs.readFileSync(${JSON.stringify(path.join(SAMPLE, 'market.json'))}, 'utf8')));
exports.handler = wrapHandler('price', (input) => ({ results: kernel.price(market, input.profiles, input.page_size || 10) }));
`;
  const joined = joinedHandler({ stdin: { contents: source, resolveDir: task, sourcefile: 'price-js.js' } });
  const plain = path.join(task, 'js', 'price-js.js');
  fs.writeFileSync(plain, joined);
  const wrapped = wrappedForLoader(joined);
  const cacheName = codeCacheName(wrapped, 'price-js');
  const added = new Map([...files, ['js/price-js.bundle.js', wrapped], [table.split(path.sep).join('/'), fs.readFileSync(path.join(ROOT, table))]]);
  fs.writeFileSync(path.join(task, 'js', 'price-js.bundle.js'), wrapped);
  fs.writeFileSync(path.join(task, 'js', cacheName), codeCache(added, 'js/price-js.bundle.js', JSON.parse(fs.readFileSync(EVENT, 'utf8'))));
  const cached = path.join(task, 'js', 'price-js-cached.js');
  fs.writeFileSync(cached, codeCacheLoader('price-js.bundle.js', cacheName));
  return { plain, cached };
}

async function cold(rounds) {
  // The task root as Lambda has it: the bundle's files (with the sample market's snapshot).
  const { bundleFiles } = require('./bundle');
  const files = bundleFiles();
  const task = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tariffsim-bench-task-'));
  for (const [name, data] of files) {
    fs.mkdirSync(path.dirname(path.join(task, name)), { recursive: true });
    fs.writeFileSync(path.join(task, name), data);
  }
  // The same task root without the price handler's code cache: its loader compiles the source.
  const uncached = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tariffsim-bench-task-'));
  fs.cpSync(task, uncached, { recursive: true });
  for (const name of fs.readdirSync(path.join(uncached, 'js'))) if (name.endsWith('.cache')) fs.rmSync(path.join(uncached, 'js', name));
  const jsHandlerFiles = jsHandlerBundles(task, files);
  const samples = { bare: [], bareUnflagged: [], bundle: [], uncached: [], primed: [], repo: [], js: [], alone: [], jsHandler: [], jsHandlerCached: [] };
  await timeSpawn(['-e', coldWasm(task)]); // warm the file cache
  await timeSpawn(['-e', coldJsHandler(jsHandlerFiles.plain)]);
  await timeSpawn(['-e', coldJsHandler(jsHandlerFiles.cached)]);
  await timeSpawn(['-e', coldWasm(ROOT)]);
  for (let i = 0; i < rounds; i++) {
    samples.bare.push(await timeSpawn(['-e', BARE]));
    samples.bareUnflagged.push(await timeSpawn(['-e', BARE], process.env, []));
    samples.bundle.push(await timeSpawn(['-e', coldWasm(task)], { ...process.env, TARIFFSIM_PRIME: '0' }));
    samples.uncached.push(await timeSpawn(['-e', coldWasm(uncached)], { ...process.env, TARIFFSIM_PRIME: '0' }));
    samples.primed.push(await timeSpawn(['-e', coldWasm(task)], { ...process.env, TARIFFSIM_PRIME: '1' }));
    samples.repo.push(await timeSpawn(['-e', coldWasm(ROOT)]));
    samples.js.push(await timeSpawn(['-e', COLD_JS]));
    samples.alone.push(await timeSpawn(['-e', coldWasmAlone(task)]));
    samples.jsHandler.push(await timeSpawn(['-e', coldJsHandler(jsHandlerFiles.plain)]));
    samples.jsHandlerCached.push(await timeSpawn(['-e', coldJsHandler(jsHandlerFiles.cached)]));
  }
  fs.rmSync(task, { recursive: true, force: true });
  fs.rmSync(uncached, { recursive: true, force: true });
  const wall = (k) => median(samples[k].map((x) => x.wall));
  const cpu = (k) => median(samples[k].map((x) => x.cpu));
  const b = wall('bare');
  const over = (x) => `+${(x - b).toFixed(1)} ms (${(x / b).toFixed(2)}x)`;
  const w = wall('bundle');
  const j = wall('js');
  row(`cold start: Lambda bundle, require js/price.js + 1 price (median of ${rounds})`, `${w.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(w), `<= +10 ms and < JS kernel: ${w - b <= 10 && w < j ? 'met' : 'NOT met'}`);
  const u = wall('uncached');
  row('cold start: the same without its code cache (V8 compiles the source)', `${u.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(u), `(reference) the cache saves ${(u - w).toFixed(1)} ms (the bundle ${(w / u).toFixed(2)}x this)`);
  const p = wall('primed');
  const first = (k) => median(samples[k].map((x) => x.first));
  row('cold start: the same, primed during init (TARIFFSIM_PRIME=1)', `${p.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(p), `(reference) its first request: ${first('primed').toFixed(1)} ms after init, unprimed ${first('bundle').toFixed(1)} ms`);
  const r = wall('repo');
  row('cold start: repo tree (no snapshot: parses the market JSON)', `${r.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(r), '(reference)');
  row('cold start: plain JS kernel (JSON.parse, compile, price)', `${j.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(j), '(reference)');
  const h = wall('jsHandler');
  row('cold start: the JS kernel in the price handler\'s wrapper (one file)', `${h.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(h), `(reference) handler for handler, the bundle ${(w - h) >= 0 ? '+' : ''}${(w - h).toFixed(1)} ms (${(w / h).toFixed(2)}x)`);
  const hc = wall('jsHandlerCached');
  row('cold start: the same with a code cache made as the bundle\'s is', `${hc.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(hc), `(reference) handler for handler, each with its code cache: the bundle ${(w - hc) >= 0 ? '+' : ''}${(w - hc).toFixed(1)} ms (${(w / hc).toFixed(2)}x)`);
  const cb = cpu('bare');
  const overCpu = (k) => `${cpu(k) >= cb ? '+' : ''}${(cpu(k) - cb).toFixed(1)} ms`;
  row('cold start CPU to the answer (user+sys, all threads): bundle', `${cpu('bundle').toFixed(1)} ms`, `bare node: ${cb.toFixed(1)} ms`, overCpu('bundle'), `JS kernel: ${overCpu('js')} (less noisy than wall time)`);
  // The part the code decides, without node's own start: from the require to the answer.
  const inProcess = (k, field = 'inProcess') => median(samples[k].map((x) => x[field]));
  row('cold start in-process, require to answer: bundle', `${inProcess('bundle').toFixed(1)} ms`, `JS kernel: ${inProcess('js').toFixed(1)} ms`, `${(inProcess('bundle') / inProcess('js')).toFixed(2)}x`, `(reference) the require ${inProcess('bundle', 'required').toFixed(1)} ms, init done at ${inProcess('bundle', 'init').toFixed(1)}, then the first request ${first('bundle').toFixed(1)}`);
  row('cold start in-process: the JS kernel in the price handler\'s wrapper', `${inProcess('jsHandler').toFixed(1)} ms`, `bundle: ${inProcess('bundle').toFixed(1)} ms`, `bundle ${(inProcess('bundle') / inProcess('jsHandler')).toFixed(2)}x`, '(reference) handler for handler');
  row('cold start in-process: the same with its code cache', `${inProcess('jsHandlerCached').toFixed(1)} ms`, `bundle: ${inProcess('bundle').toFixed(1)} ms`, `bundle ${(inProcess('bundle') / inProcess('jsHandlerCached')).toFixed(2)}x`, '(reference) handler for handler, each with its code cache');
  const alone = inProcess('alone');
  row('cold start in-process: the WebAssembly path alone (no handler)', `${alone.toFixed(1)} ms`, `JS kernel: ${inProcess('js').toFixed(1)} ms`, `${(alone / inProcess('js')).toFixed(2)}x`, `(reference) the handler's JavaScript takes ${(inProcess('bundle') - alone).toFixed(1)} ms more; below the kernel leaves it ${(inProcess('js') - alone).toFixed(1)}`);
  // The floor of any handler on this module: the same process timed from spawn, as the goal's row.
  const bu = wall('bareUnflagged');
  row('bare node without Lambda\'s V8 flags', `${bu.toFixed(1)} ms`, `bare node with them: ${b.toFixed(1)} ms`, `${(b - bu) >= 0 ? '+' : ''}${(b - bu).toFixed(1)} ms with them`, '(reference) what the flags cost node\'s own start');
  const aloneWall = wall('alone');
  row('cold start: the WebAssembly path alone (no handler)', `${aloneWall.toFixed(1)} ms`, `bare node: ${b.toFixed(1)} ms`, over(aloneWall), `(reference) the floor of a handler on this module: ${aloneWall - b <= 10 ? 'within' : 'above'} +10 ms`);
}

function warm(calls) {
  // In a node started as Lambda's runtime starts the price function's (its heap sizes matter here).
  const r = child('warm', PRICE_NODE_FLAGS, String(calls));
  const spin = r.spin;
  const us = (x) => `${x.toFixed(0)} us`;
  row(`warm price p50, full handler, JSON in/out (${calls} calls)`, us(r.wasm.p50), `plain JS kernel: ${us(r.js.p50)}`, `${(r.wasm.p50 / r.js.p50).toFixed(2)}x the JS time`, `<= 0.6x: ${r.wasm.p50 <= 0.6 * r.js.p50 ? 'met' : 'NOT met'}`);
  row('warm price p99', us(r.wasm.p99), `plain JS kernel: ${us(r.js.p99)}`, `${(r.wasm.p99 / r.js.p99).toFixed(2)}x the JS time`, `<= 100 us: ${r.wasm.p99 <= 100 ? 'met' : 'NOT met'}`);
  row('warm handler overhead alone (wrapper + JSON, no pricing)', `p50 ${us(r.empty.p50)}`, `p99 ${us(r.empty.p99)}`, '', '(reference)');
  row("the machine's tail: a plain loop sized to the wasm handler's p50", `p50 ${us(spin.p50)}`, `p99 ${us(spin.p99)}`, `wasm p99 ${(r.wasm.p99 / spin.p99).toFixed(2)}x this p99`, '(reference)');
}

function nativeReplay(profiles) {
  if (!fs.existsSync(NATIVE)) return null;
  const out = execFileSync(NATIVE, ['bench', '--spec', path.join(SAMPLE, 'run.json'), '--profiles', String(profiles), '--no-memory', '--repeats', '3'], { encoding: 'utf8', cwd: ROOT });
  // The replay the chunks do for this spec, on one thread (its label names the comparison with the
  // base market when the spec compares, as the sample's does; older builds said "price, rank, summary").
  const m = /^(replay \+ comparison with the base|replay \(price, rank, summary\)), 1 thread\s+(\d+)/m.exec(out);
  return m ? Number(m[2]) : null;
}

function replay(profiles) {
  // Native before and after wasm, the best of each side: this machine kind is noisy.
  const before = nativeReplay(profiles);
  const r = child('replay', [], String(profiles));
  const after = nativeReplay(profiles);
  const native = before && after ? Math.max(before, after) : null;
  const ps = (x) => `${Math.round(x).toLocaleString('en-GB')}/s`;
  if (native) {
    row(`replay, 1 core, wasm (${profiles.toLocaleString('en-GB')} profiles, sample run)`, ps(r.wasm), `native: ${ps(native)}`, `${(r.wasm / native).toFixed(2)}x native`, `>= 0.6x: ${r.wasm / native >= 0.6 ? 'met' : 'NOT met'}`);
  } else {
    row('replay, 1 core, wasm', ps(r.wasm), 'native: not measured (no target/release/tariffsim, or its bench output not recognised)', '-', '>= 0.6x: not measured');
  }
  row('replay, 1 core, plain JS kernel', ps(r.js), `wasm: ${ps(r.wasm)}`, `wasm ${(r.wasm / r.js).toFixed(2)}x the JS speed`, '(reference)');
  row('chunk with impressions CSV, 1 core, wasm', ps(r.wasmCsv), `wasm replay: ${ps(r.wasm)}`, `${(r.wasmCsv / r.wasm).toFixed(2)}x`, '(reference)');
}

function size() {
  const raw = fs.readFileSync(PRICE_WASM);
  const gz = zlib.gzipSync(raw, { level: 9 });
  row('size of the price lambda\'s .wasm (pkg-price)', `${(raw.length / 1024).toFixed(0)} KB raw`, `${(gz.length / 1024).toFixed(0)} KB gzipped`, `${(raw.length / (250 * 1024)).toFixed(2)}x the budget`, `<= 250 KB raw: ${raw.length <= 250 * 1024 ? 'met' : 'NOT met'}`);
  const full = fs.readFileSync(WASM);
  row('size of the full .wasm (pkg: simulate-chunk and the other lambdas)', `${(full.length / 1024).toFixed(0)} KB raw`, `${(zlib.gzipSync(full, { level: 9 }).length / 1024).toFixed(0)} KB gzipped`, '', '(reference)');
  const { bundleFiles } = require('./bundle');
  const { createZip } = require('./zip');
  const files = bundleFiles();
  const zip = createZip(files);
  const unzipped = [...files.values()].reduce((n, f) => n + f.length, 0);
  row('size of the Lambda zip', `${(zip.length / 1024).toFixed(0)} KB`, `${(unzipped / 1024).toFixed(0)} KB unzipped`, '', '(Lambda: <= 50 MB zipped)');
}

function print() {
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()}\n`);
}

/** Warm price calls per handler at the least (p99 over fewer says little). */
const MIN_WARM_CALLS = 10000;

/**
 * The counts the command line takes, with their ranges: the largest keep a bench to minutes and
 * its memory to what a laptop has (warm: each call made by four handlers, its times kept; cold:
 * six node processes a round; replay: seven wasm and six native passes over that many profiles).
 */
const COUNTS = Object.freeze({
  calls: { min: 1, max: 1_000_000 },
  cold: { min: 1, max: 1000 },
  profiles: { min: 1, max: 10_000_000 },
});

async function main() {
  if (process.argv[2] === '--child-warm') return warmChild(Number(process.argv[3]));
  if (process.argv[2] === '--child-replay') return replayChild(Number(process.argv[3]));
  const usage = `usage: npm run bench [-- --calls 20000 --cold 15 --profiles 500000 --only size,cold,warm,replay]
  --calls N     warm price calls per handler, ${COUNTS.calls.min.toLocaleString('en-GB')} to ${COUNTS.calls.max.toLocaleString('en-GB')} (fewer count as ${MIN_WARM_CALLS.toLocaleString('en-GB')})
  --cold N      cold-start rounds, ${COUNTS.cold.min} to ${COUNTS.cold.max.toLocaleString('en-GB')}
  --profiles N  replay profiles, ${COUNTS.profiles.min} to ${COUNTS.profiles.max.toLocaleString('en-GB')}`;
  const parsed = require('./cli').commandLine(process.argv.slice(2), { calls: { type: 'string', default: '20000' }, cold: { type: 'string', default: '15' }, profiles: { type: 'string', default: '500000' }, only: { type: 'string', default: 'size,cold,warm,replay' } }, usage);
  if (parsed.exit !== undefined) process.exit(parsed.exit);
  // Each count a whole number in its range: a bench that runs for ever, or runs out of memory, is
  // a usage error (exit 2, one line) before anything is measured.
  const counts = {};
  for (const [flag, { min, max }] of Object.entries(COUNTS)) {
    const text = String(parsed.values[flag]);
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      process.stderr.write(`bench: --${flag} ${JSON.stringify(text)}: give a whole number, ${min} to ${max} (npm run bench -- --help)\n`);
      process.exit(2);
    }
    counts[flag] = Number(text);
  }
  const calls = Math.max(MIN_WARM_CALLS, counts.calls);
  const rounds = counts.cold;
  const profiles = counts.profiles;
  const only = new Set(String(parsed.values.only).split(',').map((x) => x.trim()));
  const unknown = [...only].filter((x) => !['size', 'cold', 'warm', 'replay'].includes(x));
  if (unknown.length > 0) {
    process.stderr.write(`--only: unknown ${unknown.join(', ')}\n${usage}\n`);
    process.exit(2);
  }
  process.stdout.write(`tariffsim Lambda bench: node ${process.version}, ${require('node:os').cpus().length} cores, sample market ${path.relative(ROOT, SAMPLE)}\n\n`);
  if (only.has('size')) size();
  if (only.has('cold')) await cold(rounds);
  if (only.has('warm')) warm(calls);
  if (only.has('replay')) replay(profiles);
  print();
  return undefined;
}

main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
