'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { bundleFiles } = require('../tools/bundle');
const { createZip, readZip, crc32 } = require('../tools/zip');

test('the zip is reproducible: the same sources give the same bytes', () => {
  const a = createZip(bundleFiles());
  const b = createZip(bundleFiles());
  assert.ok(a.equals(b));
  const reordered = new Map([...bundleFiles()].reverse());
  assert.ok(createZip(reordered).equals(a), 'file order does not matter');
});

test('the zip holds the handlers, the runtime, the wasm package and the sample market\'s snapshot, not tests or tools', () => {
  const names = readZip(createZip(bundleFiles())).filter((e) => e.data !== null).map((e) => e.name);
  for (const must of ['package.json', 'js/price.js', 'js/simulate-chunk.js', 'js/runtime/wrap-handler.js', 'js/runtime/engine.js', 'js/runtime/config.js', 'js/runtime/logging.js', 'js/runtime/environment.js', 'tariffsim-wasm/pkg/tariffsim_wasm.js', 'tariffsim-wasm/pkg/tariffsim_wasm_bg.wasm', 'data/sample/market.json.snapshot']) {
    assert.ok(names.includes(must), must);
  }
  assert.ok(!names.some((n) => n.startsWith('js/test/') || n.startsWith('js/tools/') || n.startsWith('js/server/')));
  assert.ok(!names.some((n) => n.startsWith('node_modules/binaryen')), 'no dev dependencies');
  const pkg = JSON.parse(readZip(createZip(bundleFiles())).find((e) => e.name === 'package.json').data);
  assert.equal(pkg.type, undefined, 'CommonJS, as the Node.js 24 runtime loads it');
  assert.equal(pkg.devDependencies, undefined);
});

test('entries have fixed times and Unix modes, and round-trip', () => {
  const files = new Map([['a/b.txt', Buffer.from('hello hello hello hello')], ['c.bin', Buffer.from([0, 1, 2])]]);
  const entries = readZip(createZip(files));
  assert.deepEqual(entries.map((e) => [e.name, e.mode.toString(8)]), [['a/', '40755'], ['a/b.txt', '100644'], ['c.bin', '100644']]);
  assert.equal(entries[1].data.toString(), 'hello hello hello hello');
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('every tool answers --help with its usage and refuses an unknown flag (exit 2), doing nothing else', () => {
  const { spawnSync } = require('node:child_process');
  const tools = ['bundle', 'smoke-zip', 'snapshot', 'bench', 'bench-pipeline', 'bench-server', 'cost', 'deploy', 'promote', 'watch'];
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-tools-'));
  try {
    for (const tool of tools) {
      const file = path.join(__dirname, '..', 'tools', `${tool}.js`);
      const help = spawnSync(process.execPath, [file, '--help'], { cwd, encoding: 'utf8', timeout: 30_000 });
      assert.equal(help.status, 0, `${tool} --help: ${help.stderr}`);
      assert.match(help.stdout, /^usage: /, `${tool} --help`);
      const bad = spawnSync(process.execPath, [file, '--no-such-flag'], { cwd, encoding: 'utf8', timeout: 30_000 });
      assert.equal(bad.status, 2, `${tool} --no-such-flag: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, /--no-such-flag[\s\S]*usage: /, `${tool} --no-such-flag`);
    }
    // Nothing was written where they ran (a flag is never taken for a file name).
    assert.deepEqual(fs.readdirSync(cwd), []);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('npm run bench refuses a count out of its range (--calls, --cold, --profiles): exit 2, one line naming the flag and its range, nothing run', () => {
  const { spawnSync } = require('node:child_process');
  const bench = path.join(__dirname, '..', 'tools', 'bench.js');
  /** @type {Array<[string[], RegExp]>} */
  const cases = [
    [['--calls', '1000001'], /^bench: --calls "1000001": give a whole number, 1 to 1000000 /],
    [['--calls', 'many'], /^bench: --calls "many": give a whole number, 1 to 1000000 /],
    [['--cold', '1001'], /^bench: --cold "1001": give a whole number, 1 to 1000 /],
    [['--cold', '0'], /^bench: --cold "0": give a whole number, 1 to 1000 /],
    [['--profiles', '10000001'], /^bench: --profiles "10000001": give a whole number, 1 to 10000000 /],
    [['--profiles', '1e12', '--only', 'replay'], /^bench: --profiles "1e12": give a whole number, 1 to 10000000 /],
  ];
  for (const [args, message] of cases) {
    // Refused before anything is measured: a bench that ran would print its heading on stdout.
    const r = spawnSync(process.execPath, [bench, ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.signal ? `killed by ${r.signal} ` : ''}${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing measured`);
  }
  // The ranges are documented in the usage.
  const help = spawnSync(process.execPath, [bench, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(help.stdout, /--calls N .*1 to 1,000,000/);
  assert.match(help.stdout, /--cold N .*1 to 1,000/);
  assert.match(help.stdout, /--profiles N .*1 to 10,000,000/);
});

test('the smoke test fails a zip that cannot serve every function of config/functions.json, and leaves nothing behind', () => {
  const { smoke } = require('../tools/smoke-zip');
  const files = bundleFiles();
  files.delete('js/filter-population.js');
  for (const name of [...files.keys()]) if (name.startsWith('node_modules/redis/')) files.delete(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-broken-zip-'));
  try {
    const zip = path.join(dir, 'broken.zip');
    fs.writeFileSync(zip, createZip(files));
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tariffsim-smoke-')).length;
    assert.throws(() => smoke(zip), (/** @type {Error} */ e) => /^smoke: from the task root: filter-population: Error: Cannot find module .*; redis: MODULE_NOT_FOUND$/.test(e.message));
    assert.equal(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tariffsim-smoke-')).length, before, 'its folder is removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
