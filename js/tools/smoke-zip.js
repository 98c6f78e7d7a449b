'use strict';
// Smoke test of the Lambda zip: unzips it into a temporary folder and calls each handler the way
// the Node.js 24 Lambda runtime (nodejs24.x) does: a fresh node process with the runtime's V8 flags
// (bundle.js lambdaNodeFlags, for the function's memory) whose working folder is the task root, the handler string split into a module path and an export, the module required from
// the unzipped root, the export called with an event and a context object.
//
//   npm run smoke [-- ZIP]          (default dist/tariffsim-lambda.zip)

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { readZip } = require('./zip');
const { lambdaNodeFlags } = require('./bundle');

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'tests', 'fixtures');
const lambdaFixture = (name) => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'lambda', name), 'utf8'));

// What the Lambda runtime does with a handler string, in a fresh process rooted at the task root.
const RUNTIME = `
const path = require('node:path');
const [handlerString, eventJson, contextJson] = process.argv.slice(1);
const root = process.env.LAMBDA_TASK_ROOT;
const dot = handlerString.lastIndexOf('.');
const mod = require(path.resolve(root, handlerString.slice(0, dot)));
const fn = mod[handlerString.slice(dot + 1)];
if (typeof fn !== 'function') throw new Error('no handler ' + handlerString);
const context = { ...JSON.parse(contextJson), getRemainingTimeInMillis: () => 30000 };
Promise.resolve(fn(JSON.parse(eventJson), context)).then(
  (result) => ({ result }),
  (e) => ({ error: { errorType: e.name, errorMessage: e.message } }),
).then((outcome) => {
  outcome.codeCache = mod.codeCache;
  outcome.outside = Object.keys(require.cache).filter((f) => !f.startsWith(root + path.sep));
  process.stderr.write('SMOKE ' + JSON.stringify(outcome) + '\\n');
});
`;

// Every handler the functions name (config/functions.json, as the zip has it): its module loads
// from the task root alone and exports a function; and every production dependency of the zip's
// package.json (what the fan-out lambdas require lazily: the AWS SDK clients, redis) resolves
// inside it.
const LOADS = `
const path = require('node:path');
const root = process.env.LAMBDA_TASK_ROOT;
const out = {};
const functions = require(path.join(root, 'config', 'functions.json')).functions;
for (const [name, f] of Object.entries(functions)) {
  const dot = f.handler.lastIndexOf('.');
  try {
    const fn = require(path.resolve(root, f.handler.slice(0, dot)))[f.handler.slice(dot + 1)];
    out[name] = typeof fn === 'function' ? 'ok' : 'no handler ' + f.handler;
  } catch (e) {
    out[name] = e.name + ': ' + e.message.split('\\n')[0];
  }
}
for (const dep of Object.keys(require(path.join(root, 'package.json')).dependencies || {})) {
  try {
    const at = require.resolve(dep, { paths: [root] });
    out[dep] = at.startsWith(root + path.sep) ? 'ok' : 'resolved outside the task root: ' + at;
  } catch (e) {
    out[dep] = e.code || e.name;
  }
}
out['(outside)'] = Object.keys(require.cache).filter((f) => !f.startsWith(root + path.sep)).join(', ') || 'ok';
process.stderr.write('LOADS ' + JSON.stringify(out) + '\\n');
`;

function unzip(zipFile, dir) {
  const unzipTool = spawnSync('unzip', ['-v'], { stdio: 'ignore' });
  if (unzipTool.status === 0) execFileSync('unzip', ['-q', zipFile, '-d', dir]);
  else execFileSync('python3', ['-m', 'zipfile', '-e', zipFile, dir]);
}

function call(root, env, handlerString, event, context) {
  const functions = JSON.parse(fs.readFileSync(path.join(root, 'config', 'functions.json'), 'utf8')).functions;
  const f = Object.values(functions).find((x) => x.handler === handlerString);
  if (!f) throw new Error(`no function of config/functions.json has the handler ${handlerString}`);
  const out = spawnSync(process.execPath, [...lambdaNodeFlags(f.memoryMb), '-e', RUNTIME, handlerString, JSON.stringify(event), JSON.stringify(context)], {
    cwd: root,
    env: { PATH: process.env.PATH, LAMBDA_TASK_ROOT: root, ...env },
    encoding: 'utf8',
  });
  const line = out.stderr.split('\n').find((l) => l.startsWith('SMOKE '));
  if (!line) throw new Error(`${handlerString} did not answer (exit ${out.status}):\n${out.stderr}`);
  return JSON.parse(line.slice(6));
}

function check(cond, message) {
  if (!cond) throw new Error(`smoke: ${message}`);
}

function smoke(zipFile) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-smoke-'));
  try {
    return smokeIn(work, zipFile);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function smokeIn(work, zipFile) {
  const root = path.join(work, 'task');
  const data = path.join(work, 'data');
  fs.mkdirSync(root);
  fs.mkdirSync(data);
  unzip(zipFile, root);
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json', 'mini_run.json']) fs.copyFileSync(path.join(FIXTURES, f), path.join(data, f));
  check(readZip(fs.readFileSync(zipFile)).every((e) => e.data === null || e.name.startsWith('js/') || e.name.startsWith('tariffsim-wasm/pkg/') || e.name.startsWith('tariffsim-wasm/pkg-price/') || e.name.startsWith('data/') || e.name.startsWith('node_modules/') || e.name.startsWith('config/') || e.name === 'package.json'), 'unexpected files in the zip');
  const env = { TARIFFSIM_DATA_DIR: data, TARIFFSIM_OUT_DIR: path.join(work, 'out') };
  const prod = lambdaFixture('context-prod.json');
  const results = [];

  const loads = spawnSync(process.execPath, ['-e', LOADS], { cwd: root, env: { PATH: process.env.PATH, LAMBDA_TASK_ROOT: root, ...env }, encoding: 'utf8' });
  const loadLine = loads.stderr.split('\n').find((l) => l.startsWith('LOADS '));
  check(loadLine !== undefined, `the handlers could not be loaded (exit ${loads.status}): ${loads.stderr.trim().split('\n').pop()}`);
  const loaded = JSON.parse(loadLine.slice(6));
  const failed = Object.entries(loaded).filter(([, v]) => v !== 'ok');
  check(failed.length === 0, `from the task root: ${failed.map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  results.push(`every handler of config/functions.json loads and every production dependency resolves, from the task root alone (${Object.keys(loaded).length - 1} checked)`);

  const priced = call(root, env, 'js/price.handler', lambdaFixture('price-sample.json'), prod);
  check(priced.result && priced.result.results[0].rows.length === 10, `price: ${JSON.stringify(priced.error)}`);
  check(priced.outside.length === 0, `price loaded files outside the task root: ${priced.outside}`);
  check(priced.codeCache === 'accepted', `price: its code cache was ${priced.codeCache}, not accepted, with the runtime's V8 flags`);
  results.push(`js/price.handler (compiled with its code cache): ${priced.result.results[0].eligible} tariffs eligible, cheapest ${priced.result.results[0].rows[0].tariff_id} at £${priced.result.results[0].rows[0].annual_cost_gbp}`);

  const hypothetical = call(root, env, 'js/price.handler', lambdaFixture('price-hypothetical.json'), prod);
  check(hypothetical.result && hypothetical.result.results[0].hypothetical[0].rank === 1, 'price with a hypothetical tariff');
  results.push(`js/price.handler (hypothetical): newco-fix-12m ranks ${hypothetical.result.results[0].hypothetical[0].rank}`);

  const bad = call(root, env, 'js/price.handler', lambdaFixture('price-unknown-region.json'), prod);
  check(bad.error && bad.error.errorType === 'UnknownRegion', `price error: ${JSON.stringify(bad)}`);
  results.push(`js/price.handler (bad region): errorType ${bad.error.errorType}`);

  const chunk = call(root, env, 'js/simulate-chunk.handler', { spec: 'mini_run.json', index: 0, run_id: 'smoke' }, lambdaFixture('context-simulate-chunk.json'));
  check(chunk.result && chunk.result.profiles === 300 && fs.existsSync(chunk.result.impressions_file), `simulate-chunk: ${JSON.stringify(chunk.error)}`);
  check(chunk.outside.length === 0, `simulate-chunk loaded files outside the task root: ${chunk.outside}`);
  const native = path.join(ROOT, 'target', 'release', 'tariffsim');
  if (fs.existsSync(native)) {
    const csv = path.join(work, 'native-0.csv');
    execFileSync(native, ['chunk', path.join(data, 'mini_run.json'), '--index', '0', '--impressions', csv], { stdio: 'ignore' });
    check(fs.readFileSync(csv).equals(fs.readFileSync(chunk.result.impressions_file)), 'the zip\'s chunk differs from the native command\'s');
    results.push(`js/simulate-chunk.handler: chunk 0 of ${chunk.result.chunk_count}, ${chunk.result.impressions} impressions, byte-identical to tariffsim chunk`);
  } else {
    results.push(`js/simulate-chunk.handler: chunk 0 of ${chunk.result.chunk_count}, ${chunk.result.impressions} impressions`);
  }
  const none = call(root, env, 'js/simulate-chunk.handler', { spec: 'mini_run.json', index: 99 }, lambdaFixture('context-simulate-chunk.json'));
  check(none.error && none.error.errorType === 'NoSuchChunk', 'simulate-chunk error');
  results.push(`js/simulate-chunk.handler (chunk 99): errorType ${none.error.errorType}`);
  return results;
}

if (require.main === module) {
  const usage = 'usage: npm run smoke [-- ZIP]   (default dist/tariffsim-lambda.zip)';
  const parsed = require('./cli').commandLine(process.argv.slice(2), {}, usage, { positionals: true });
  if (parsed.exit !== undefined) process.exit(parsed.exit);
  if (parsed.positionals.length > 1) {
    process.stderr.write(`one zip at most\n${usage}\n`);
    process.exit(2);
  }
  const zipFile = path.resolve(parsed.positionals[0] || path.join(ROOT, 'dist', 'tariffsim-lambda.zip'));
  try {
    for (const line of smoke(zipFile)) process.stdout.write(`ok ${line}\n`);
  } catch (e) {
    // One line: what failed (its message starts with `smoke:`), not a stack.
    process.stderr.write(`${e.message.startsWith('smoke:') ? '' : 'smoke: '}${e.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`smoke: ${path.relative(process.cwd(), zipFile)} passed\n`);
}

module.exports = { smoke };
