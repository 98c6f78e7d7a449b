'use strict';
// Issue 13, the JavaScript side: each bad input a clear 4xx, the development server safe to leave
// running (Host, Origin, content type, fault injection opt-in), every storage write checked, no
// absolute path in any reply or stored state. Against the real server on a loopback port, real
// clients (Node's http, Chromium), a real file-size limit for short writes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const execFile = promisify(require('node:child_process').execFile);
const { spawn } = require('node:child_process');
const { ROOT, FIXTURES, fixture } = require('./helpers');
const { freePort, waitForPort } = require('./servers');

const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-harden-'));
// STAGING reads its inputs from a folder of files with byte-order marks.
const bomData = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bom-data-'));
const bomMarkets = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bom-markets-'));
// Where standalone simulate-chunk calls write (not the default $TMPDIR/tariffsim/out).
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-harden-out-'));
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
let app;
let port;
let endpoint;
let engine;

const SPEC = { market: 'mini_market.json', visits: 'mini_visits.csv', sample_size: 40, chunk_size: 20, seed: 7 };
const PRICE = { market: 'sample', profile: { region: 'C', fuel: 'dual_fuel' }, page_size: 3 };
const INVOKE = (name) => `/2015-03-31/functions/${name}/invocations`;

before(async () => {
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json', 'mini_run.json']) {
    fs.writeFileSync(path.join(bomData, f), Buffer.concat([BOM, fs.readFileSync(path.join(FIXTURES, f))]));
  }
  fs.writeFileSync(path.join(bomMarkets, 'mini.json'), Buffer.concat([BOM, fs.readFileSync(path.join(FIXTURES, 'mini_market.json'))]));
  Object.assign(process.env, {
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_OUT_DIR: outDir,
    // DEV resolves specs under tests/fixtures (inside the checkout: messages must not show it).
    TARIFFSIM_DATA_DIR: FIXTURES,
    TARIFFSIM_DATA_DIR_STAGING: bomData,
    TARIFFSIM_MARKETS_DIR_STAGING: bomMarkets,
    TARIFFSIM_LOG_LEVEL: 'INFO',
    TARIFFSIM_ALLOWED_HOSTS: 'tariffsim.test,pinned.test:4444',
  });
  delete process.env.TARIFFSIM_DEBUG_HOOKS;
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const { buildServer } = require('../server/server');
  engine = require('../runtime/engine');
  app = buildServer({ allowedHosts: ['lan-name.test'] });
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(endpoint).port);
});

after(async () => {
  await require('../runtime/invoke').idle();
  await app.close();
  for (const d of [storageDir, bomData, bomMarkets, outDir]) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * One HTTP request with exactly the given headers (Host included, which fetch does not let a
 * caller set). Resolves {status, headers, text, json}.
 * @param {string} method
 * @param {string} urlPath
 * @param {{headers?: Record<string, string>, body?: unknown}} [options] `body`: sent as it is when
 *   text or bytes, else as JSON
 * @returns {Promise<{status: number, headers: http.IncomingHttpHeaders, text: string, json: any}>}
 */
function request(method, urlPath, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: { host: `127.0.0.1:${port}`, ...headers }, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    else req.end();
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const rest = (name, body, headers = {}) => request('POST', `/lambdas/${name}`, { headers: { ...JSON_TYPE, ...headers }, body });
const invoke = (name, body, headers = {}) => request('POST', INVOKE(name), { headers: { 'content-type': 'application/octet-stream', ...headers }, body });

/** A typed client error: status 4xx with errorType `type` (REST) or an AWS error type (Invoke API). */
function refused(res, status, type) {
  assert.equal(res.status, status, res.text);
  if (res.headers['x-amzn-errortype'] !== undefined) assert.equal(res.headers['x-amzn-errortype'], type, res.text);
  else assert.equal(res.json.errorType, type, res.text);
}

/** A function error of the Invoke API: 200 with X-Amz-Function-Error and errorType `type`. */
function functionError(res, type) {
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-amz-function-error'], 'Unhandled', res.text);
  assert.equal(res.json.errorType, type, res.text);
}

test('content type: state-changing requests need JSON; the Invoke API also takes what the AWS SDKs send', async () => {
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
    refused(await request('POST', '/lambdas/price', { headers: { 'content-type': type }, body: PRICE }), 415, 'UnsupportedMediaType');
    refused(await request('POST', INVOKE('tariffsim-price'), { headers: { 'content-type': type }, body: PRICE }), 415, 'UnsupportedMediaTypeException');
  }
  // REST: JSON only, a missing type included.
  refused(await request('POST', '/lambdas/price', { body: PRICE }), 415, 'UnsupportedMediaType');
  assert.equal((await request('POST', '/lambdas/price', { headers: { 'content-type': 'application/json; charset=utf-8' }, body: PRICE })).status, 200);
  // Invoke API: JSON, the SDKs' binary types, an empty type (older Ruby SDKs) or none (boto3).
  for (const headers of [{ 'content-type': 'application/json' }, { 'content-type': 'application/octet-stream' }, { 'content-type': 'binary/octet-stream' }, { 'content-type': '' }, {}]) {
    const res = await request('POST', INVOKE('tariffsim-price'), { headers, body: PRICE });
    assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${res.text}`);
    assert.equal(res.json.results[0].rows.length, 3);
  }
  // GET stays open: the page and its API.
  assert.equal((await request('GET', '/')).status, 200);
  assert.equal((await request('GET', '/api/runs/never-started')).status, 200);
});

test('the AWS SDK for JavaScript v3 sends a type the Invoke API takes', async () => {
  // The SDK's own request, seen by a plain server standing in for the endpoint.
  const seen = [];
  const spy = http.createServer((req, res) => {
    seen.push(req.headers['content-type']);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await /** @type {Promise<void>} */ (new Promise((resolve) => spy.listen(0, '127.0.0.1', resolve)));
  const sdk = require('@aws-sdk/client-lambda');
  const client = new sdk.LambdaClient({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (spy.address()).port}`, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
  try {
    await client.send(new sdk.InvokeCommand({ FunctionName: 'tariffsim-price', Payload: Buffer.from(JSON.stringify(PRICE)) }));
  } finally {
    client.destroy();
    spy.close();
  }
  assert.equal(seen.length, 1);
  const type = (seen[0] || '').split(';')[0];
  assert.ok(['', 'application/json', 'application/octet-stream', 'binary/octet-stream'].includes(type), `the SDK sent ${seen[0]}`);
  // And through the real server, unchanged but for the endpoint.
  const lambda = new sdk.LambdaClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
  try {
    const out = await lambda.send(new sdk.InvokeCommand({ FunctionName: 'tariffsim-price', Payload: Buffer.from(JSON.stringify(PRICE)) }));
    assert.equal(JSON.parse(Buffer.from(out.Payload).toString()).results[0].rows.length, 3);
  } finally {
    lambda.destroy();
  }
});

test('Host: loopback names with the server port and configured names only (DNS rebinding)', async () => {
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, 'tariffsim.test', `tariffsim.test:${port}`, 'pinned.test:4444', `lan-name.test:${port}`]) {
    const res = await request('GET', '/', { headers: { host } });
    assert.equal(res.status, 200, `${host}: ${res.text}`);
  }
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `localhost:${port + 1}`, 'localhost', 'pinned.test:4445', `attacker.localhost.evil.example:${port}`, 'a b', '[::2]:' + port]) {
    refused(await request('GET', '/', { headers: { host } }), 403, 'HostNotAllowed');
    refused(await request('POST', '/lambdas/price', { headers: { host, ...JSON_TYPE }, body: PRICE }), 403, 'HostNotAllowed');
    refused(await request('POST', INVOKE('tariffsim-price'), { headers: { host }, body: PRICE }), 403, 'HostNotAllowed');
  }
  // No Host at all (HTTP/1.0): refused too.
  const noHost = await new Promise((resolve, reject) => {
    const sock = require('node:net').connect(port, '127.0.0.1', () => sock.end('GET / HTTP/1.0\r\n\r\n'));
    let text = '';
    sock.on('data', (d) => (text += d));
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
  });
  assert.match(noHost, /^HTTP\/1\.[01] 403/);
  assert.match(noHost, /HostNotAllowed/);
  const { loadConfig } = require('../runtime/config');
  assert.deepEqual(loadConfig({ TARIFFSIM_ALLOWED_HOSTS: ' Box.Lan , other:8080,' }).allowedHosts, ['box.lan', 'other:8080']);
  assert.deepEqual(loadConfig({}).allowedHosts, []);
  const { buildServer } = require('../server/server');
  assert.throws(() => buildServer({ allowedHosts: ['not a host'] }), /allowed host "not a host"/);
});

test('npm start: --allowed-host adds a name, --host serves its own address', async () => {
  const p = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(p), '--allowed-host', 'box.lan', '--allowed-host', 'other.lan:9'], {
    env: { ...process.env, TARIFFSIM_ALLOWED_HOSTS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  try {
    await waitForPort(p);
    const get = (host) =>
      new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: p, path: '/', headers: { host }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on('error', reject);
      });
    assert.equal(await get(`box.lan:${p}`), 200, log);
    assert.equal(await get('other.lan:9'), 200);
    assert.equal(await get(`other.lan:${p}`), 403);
    assert.equal(await get(`127.0.0.1:${p}`), 200);
    assert.equal(await get(`evil.example:${p}`), 403);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
});

test('Origin: a request from another origin is 403 CrossOriginRequest; the server\'s own pages pass', async () => {
  const own = `http://127.0.0.1:${port}`;
  for (const origin of ['http://evil.example', `http://127.0.0.1:${port + 1}`, `https://127.0.0.1:${port + 1}`, `http://localhost:${port}`, 'null', 'not a url']) {
    refused(await request('POST', '/lambdas/run-simulation', { headers: { ...JSON_TYPE, origin }, body: { 'request-id': 'never-started', spec: SPEC } }), 403, 'CrossOriginRequest');
    refused(await request('POST', INVOKE('tariffsim-run-simulation'), { headers: { origin }, body: { 'request-id': 'never-started', spec: SPEC } }), 403, 'CrossOriginRequest');
    refused(await request('GET', '/api/runs/never-started', { headers: { origin } }), 403, 'CrossOriginRequest');
  }
  // Fetch metadata without an Origin: cross-site and same-site requests are refused too...
  for (const site of ['cross-site', 'same-site']) {
    refused(await request('POST', '/lambdas/price', { headers: { ...JSON_TYPE, 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors' }, body: PRICE }), 403, 'CrossOriginRequest');
    refused(await request('POST', '/lambdas/price', { headers: { ...JSON_TYPE, 'sec-fetch-site': site, 'sec-fetch-mode': 'navigate' }, body: PRICE }), 403, 'CrossOriginRequest');
    refused(await request('GET', '/api/markets/sample', { headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'cors' } }), 403, 'CrossOriginRequest');
  }
  // ...but a link to the run page from elsewhere opens it.
  assert.equal((await request('GET', '/', { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } })).status, 200);
  // The page's own calls.
  const ownCall = await request('POST', '/lambdas/price', { headers: { ...JSON_TYPE, origin: own, 'sec-fetch-site': 'same-origin' }, body: PRICE });
  assert.equal(ownCall.status, 200, ownCall.text);
  assert.equal((await request('GET', '/api/runs/never-started', { headers: { origin: own, 'sec-fetch-site': 'same-origin' } })).status, 200);
  assert.equal((await request('POST', '/lambdas/price', { headers: { ...JSON_TYPE, host: `localhost:${port}`, origin: `http://localhost:${port}` }, body: PRICE })).status, 200);
  // Nothing was started by the refused calls.
  const state = await request('GET', '/api/runs/never-started');
  assert.equal(state.json.status, 'unknown');
});

test('in Chromium: another origin cannot start a run (text/plain form, no-cors fetch); a rebound name gets nothing', async () => {
  const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const { chromium } = require('playwright-core');
  // The attacker's page, on another origin: a form posting text/plain JSON and a no-cors fetch.
  const attacker = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><body>
<form id="f" method="POST" enctype="text/plain" action="${endpoint}/lambdas/run-simulation" target="sink">
<input name='{"request-id":"csrf-form","spec":{"market":"mini_market.json","visits":"mini_visits.csv","sample_size":40,"chunk_size":20,"seed":7},"x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
window.attack = async () => {
  const body = JSON.stringify({ 'request-id': 'csrf-fetch', spec: ${JSON.stringify(SPEC)} });
  await fetch('${endpoint}/lambdas/run-simulation', { method: 'POST', mode: 'no-cors', body }).catch(() => {});
  await fetch('${endpoint}/2015-03-31/functions/tariffsim-run-simulation/invocations', { method: 'POST', mode: 'no-cors', body: JSON.stringify({ 'request-id': 'csrf-invoke', spec: ${JSON.stringify(SPEC)} }) }).catch(() => {});
  document.getElementById('f').submit();
};
</script></body>`);
  });
  await /** @type {Promise<void>} */ (new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve)));
  const attackerPort = /** @type {import('node:net').AddressInfo} */ (attacker.address()).port;
  const seen = [];
  /** @type {import('playwright-core').Browser | null} */
  let browser = null;
  try {
    // Inside the try: a browser that does not start leaves no server open behind it.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // evil.test resolves to 127.0.0.1, as a rebinding DNS server would make it.
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP evil.test 127.0.0.1'],
    });
    const page = await browser.newPage();
    page.on('response', (r) => seen.push(`${r.request().method()} ${r.url()} ${r.status()}`));
    await page.goto(`http://127.0.0.1:${attackerPort}/`);
    // window.attack is the attacker's page's own (its script above).
    await page.evaluate(() => /** @type {typeof window & {attack: () => Promise<void>}} */ (window).attack());
    await page.waitForLoadState('networkidle');
    // DNS rebinding: the dev server's own page under the attacker's name is refused.
    const rebound = await page.goto(`http://evil.test:${port}/`);
    assert.equal(rebound.status(), 403);
    assert.match(await rebound.text(), /HostNotAllowed/);
    const reboundApi = await page.goto(`http://evil.test:${port}/api/runs/csrf-fetch`);
    assert.equal(reboundApi.status(), 403);
  } finally {
    if (browser !== null) await browser.close();
    attacker.close();
  }
  // The form's navigation was answered 403 (or 415); no run exists.
  assert.ok(seen.some((s) => s.startsWith(`POST ${endpoint}/lambdas/run-simulation 40`)), seen.join('\n'));
  for (const id of ['csrf-form', 'csrf-fetch', 'csrf-invoke']) {
    const state = await request('GET', `/api/runs/${id}`);
    assert.equal(state.json.status, 'unknown', `${id}: ${state.text}`);
  }
  assert.deepEqual(fs.existsSync(path.join(storageDir, 'runs')) ? fs.readdirSync(path.join(storageDir, 'runs')).filter((r) => r.startsWith('csrf')) : [], []);
});

test('debug_panic is refused unless TARIFFSIM_DEBUG_HOOKS=1', async () => {
  const generation = engine.generation();
  const res = await rest('price', fixture('price-debug-panic.json'));
  refused(res, 400, 'InvalidRequest');
  assert.match(res.json.errorMessage, /TARIFFSIM_DEBUG_HOOKS=1/);
  functionError(await invoke('tariffsim-price', fixture('price-debug-panic.json')), 'InvalidRequest');
  assert.equal(engine.generation(), generation, 'no trap');
});

test('function names: odd names are 404 ResourceNotFoundException or, outside Lambda\'s pattern, 400 ValidationException, never 500', async () => {
  for (const name of ['constructor', '__proto__', 'toString', 'tariffsim-constructor', 'arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Anope', 'tariffsim-price.v2']) {
    const res = await invoke(name, PRICE);
    refused(res, 404, 'ResourceNotFoundException');
  }
  // Names Lambda's FunctionName pattern refuses (a character it does not allow, a part too many),
  // and a Qualifier given twice or outside its pattern: as Lambda, 400 ValidationException.
  for (const name of ['%25', '%25%25', 'tariffsim-%25', '%2525', 'arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3A%25', '%F0%9F%92%A5', 'a:function:tariffsim-price:STAGING:x', 'tariffsim-price:PROD:x']) {
    refused(await invoke(name, PRICE), 400, 'ValidationException');
  }
  const withQuery = (name, query) => request('POST', `${INVOKE(name)}?${query}`, { headers: { 'content-type': 'application/octet-stream' }, body: PRICE });
  refused(await withQuery('tariffsim-price:PROD', 'Qualifier=PROD&Qualifier=STAGING'), 400, 'ValidationException');
  refused(await withQuery('tariffsim-price', 'Qualifier=%25'), 400, 'ValidationException');
  assert.equal((await withQuery('tariffsim-price', 'Qualifier=PROD')).status, 200);
  // Malformed escapes are the router's 400, still a client error.
  for (const name of ['%', '%E0%A4%A', '%zz']) {
    const res = await invoke(name, PRICE);
    assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status} ${res.text}`);
  }
  for (const name of ['%25', 'constructor', '__proto__', 'hasOwnProperty']) {
    refused(await rest(name, PRICE), 404, 'ResourceNotFoundException');
  }
});

test('names that are Object.prototype properties are names like any other', async () => {
  for (const market of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__proto__', '__defineGetter__']) {
    const res = await rest('price', { ...PRICE, market });
    assert.ok(res.status === 404 || res.status === 400, `${market}: ${res.status} ${res.text}`);
    assert.ok(['UnknownMarket', 'InvalidRequest'].includes(res.json.errorType), res.text);
    const viaInvoke = await invoke('tariffsim-price', { ...PRICE, market });
    assert.equal(viaInvoke.json.errorType, res.json.errorType);
    // A stored market folder (STAGING) too.
    const staging = await rest('price?env=STAGING', { ...PRICE, market });
    assert.ok(['UnknownMarket', 'InvalidRequest'].includes(staging.json.errorType), staging.text);
  }
  // A "__proto__" key is a field like any other: unknown.
  const proto = await rest('price', `{"market": "sample", "profile": {"region": "C"}, "__proto__": {"debug_panic": "x"}}`);
  refused(proto, 400, 'InvalidRequest');
  assert.match(proto.json.errorMessage, /unknown field "__proto__"/);
  for (const [name, body] of [
    ['filter-population', { run_id: 'constructor' }],
    ['simulate-chunk', { run_id: 'toString', index: 0 }],
  ]) {
    const res = await rest(name, body);
    assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status} ${res.text}`);
  }
  // A market file called "constructor" is a file like any other (missing: the run fails on it).
  const started = await rest('run-simulation', { 'request-id': 'proto-spec', spec: { ...SPEC, market: 'constructor' } });
  assert.ok(started.status < 500, started.text);
  refused(await request('GET', '/api/runs/constructor/summary'), 404, 'UnknownRun');
  refused(await request('GET', '/api/markets/constructor'), 404, 'UnknownMarket');
});

const deep = (n, leaf = '1') => '['.repeat(n) + leaf + ']'.repeat(n);

test('JSON nested 10,000 deep: 400 NestingTooDeep in every lambda, the warm instance kept, the next call answered', async () => {
  const generation = engine.generation();
  const { result: reference } = { result: (await rest('price', PRICE)).json };
  const cases = [
    ['price', `{"market": "sample", "profile": {"region": "C"}, "scenario": {"changes": ${deep(10000)}}}`],
    ['price', `{"market": "sample", "profiles": ${deep(10000, '{"region": "C"}')}}`],
    ['price', `{"market": {"tariffs": ${deep(10000)}}, "profile": {"region": "C"}}`],
    ['run-simulation', `{"request-id": "deep-run", "spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "filter": ${deep(10000)}}}`],
    ['run-simulation', `{"request-id": "deep-run", "spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "scenario": {"changes": ${deep(10000)}}}}`],
    ['simulate-chunk', `{"spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "filter": ${deep(10000)}}, "index": 0}`],
    ['filter-population', `{"run_id": ${deep(10000, '"x"')}}`],
    ['price', deep(10000)],
  ];
  for (const [name, body] of cases) {
    const res = await rest(name, body);
    refused(res, 400, 'NestingTooDeep');
    assert.match(res.json.errorMessage, /nested more than 64 levels/);
    functionError(await invoke(`tariffsim-${name}`, body), 'NestingTooDeep');
    assert.equal(engine.generation(), generation, `${name}: the warm instance is kept`);
    assert.deepEqual((await rest('price', PRICE)).json, reference, 'the next call answers as before');
  }
  // At the limit, nesting is not the problem (the lambda judges the shape).
  const { MAX_NESTING } = require('../runtime/wrap-handler');
  assert.equal(MAX_NESTING, 64);
  // The input is level 1, scenario 2, changes 3: 61 arrays put the innermost {} at level 64.
  const atLimit = await rest('price', `{"market": "sample", "profile": {"region": "C"}, "scenario": {"changes": ${deep(61, '{}')}}}`);
  assert.notEqual(atLimit.json.errorType, 'NestingTooDeep', atLimit.text);
  assert.ok(atLimit.status < 500, atLimit.text);
  const over = await rest('price', `{"market": "sample", "profile": {"region": "C"}, "scenario": {"changes": ${deep(62, '{}')}}}`);
  refused(over, 400, 'NestingTooDeep');
  // A spec file nested too deep (read from the data folder) is refused the same way.
  fs.writeFileSync(path.join(bomData, 'deep-spec.json'), `{"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "filter": ${deep(10000)}}`);
  refused(await rest('run-simulation?env=STAGING', { 'request-id': 'deep-file', spec: 'deep-spec.json' }), 400, 'NestingTooDeep');
  assert.equal(engine.generation(), generation);
  // The next run-simulation call starts its run.
  const ok = await rest('run-simulation', { 'request-id': 'after-deep', spec: SPEC });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.status, 'started');
});

test('whole numbers beyond 2^53: 400 InvalidRequest naming the field, never a 500', async () => {
  const cases = [
    ['run-simulation', '{"request-id": "big-sample", "spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 9223372036854775808}}', 'spec.sample_size'],
    ['run-simulation', '{"request-id": "big-seed", "spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "seed": 9007199254740993}}', 'spec.seed'],
    ['simulate-chunk', '{"spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 9223372036854775808}, "index": 0}', 'spec.sample_size'],
    ['simulate-chunk', '{"spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40, "seed": 9007199254740993}, "index": 0}', 'spec.seed'],
    ['simulate-chunk', '{"spec": {"market": "mini_market.json", "visits": "mini_visits.csv", "sample_size": 40}, "index": 18446744073709551616}', 'index'],
    ['price', '{"market": "sample", "profile": {"region": "C", "elec_kwh": 1e300}}', 'profile.elec_kwh'],
    ['price', '{"market": "sample", "profile": {"region": "C"}, "page_size": -9007199254740993}', 'page_size'],
    ['filter-population', '{"run_id": "x", "depth": 9007199254740992}', 'depth'],
  ];
  for (const [name, body, field] of cases) {
    const res = await rest(name, body);
    refused(res, 400, 'InvalidRequest');
    assert.ok(res.json.errorMessage.startsWith(`${field} is `), res.json.errorMessage);
    assert.match(res.json.errorMessage, /2\^53/);
    functionError(await invoke(`tariffsim-${name}`, body), 'InvalidRequest');
  }
  // 2^53 − 1 itself is a number like any other: a seed of 2^53 − 1 is valid.
  const seed = await rest('simulate-chunk', { spec: { ...SPEC, seed: Number.MAX_SAFE_INTEGER }, index: 0, run_id: 'max-seed' });
  assert.equal(seed.status, 200, seed.text);
});

test('numbers JSON reads as Infinity and bytes that are not UTF-8 are refused, never priced on a default or a U+FFFD', async () => {
  const generation = engine.generation();
  for (const [body, field] of [
    ['{"market": "sample", "page_size": 1, "profile": {"visit_id": "a", "region": "C", "elec_kwh": 1e400}}', 'profile.elec_kwh'],
    ['{"market": "sample", "page_size": 1, "profile": {"visit_id": "a", "region": "C", "gas_kwh": -1e400}}', 'profile.gas_kwh'],
    ['{"market": "sample", "profile": {"region": "C"}, "hypothetical_tariffs": [{"id": "x", "term_months": 1e400}]}', 'hypothetical_tariffs[0].term_months'],
  ]) {
    const res = await rest('price', body);
    refused(res, 400, 'InvalidRequest');
    assert.equal(res.json.errorMessage, `${field} is a number too large for a double (it reads as ${body.includes('-1e400') ? '-' : ''}Infinity): give a finite number`);
    functionError(await invoke('tariffsim-price', body), 'InvalidRequest');
  }
  const notUtf8 = Buffer.concat([Buffer.from('{"market": "sample", "page_size": 1, "profile": {"visit_id": "a'), Buffer.from([0xff]), Buffer.from('", "region": "C"}}')]);
  refused(await rest('price', notUtf8), 400, 'InvalidJson');
  refused(await invoke('tariffsim-price', notUtf8), 400, 'InvalidRequestContentException');
  // A handler given the bytes themselves (as a test or another runtime may) refuses them alike.
  const { handler } = require('../price');
  await assert.rejects(handler(notUtf8, {}), (/** @type {Error} */ e) => e.name === 'InvalidJson' && /not UTF-8/.test(e.message));
  assert.equal(engine.generation(), generation);
  const ok = await rest('price', '{"market": "sample", "page_size": 1, "profile": {"visit_id": "a", "region": "C"}}');
  assert.equal(ok.status, 200, ok.text);
});

test('sizes and money a caller can give are typed 4xx through the lambdas: stacked price moves, a 5 MB visit id, 10 MB payloads', async () => {
  // Twelve +1000% price moves would overflow: the core refuses the change that leaves its limits.
  const changes = Array.from({ length: 12 }, () => ({ op: 'move_prices', percent: 1000 }));
  const moved = await rest('price', { ...PRICE, scenario: { changes } });
  assert.ok(moved.status >= 400 && moved.status < 500, moved.text);
  assert.match(moved.json.errorType, /^Invalid/);
  assert.match(moved.json.errorMessage, /^changes\[\d+\]/);
  // A visit id of 5 MB: refused by its length, not by memory.
  const longId = await rest('price', { ...PRICE, profile: { region: 'C', visit_id: 'v'.repeat(5 * 1024 * 1024) } });
  refused(longId, 400, 'InvalidVisit');
  functionError(await invoke('tariffsim-price', { ...PRICE, profile: { region: 'C', visit_id: 'v'.repeat(5 * 1024 * 1024) } }), 'InvalidVisit');
  // 10 MB: over Lambda's payload limit, on both routes.
  refused(await rest('price', { ...PRICE, profile: { region: 'C', visit_id: 'v'.repeat(10 * 1024 * 1024) } }), 413, 'RequestTooLargeException');
  refused(await invoke('tariffsim-price', { ...PRICE, profile: { region: 'C', visit_id: 'v'.repeat(10 * 1024 * 1024) } }), 413, 'RequestTooLargeException');
  assert.equal((await rest('price', PRICE)).status, 200);
});

test('folder storage: a short write and a write past the file-size limit are StorageWriteFailed naming the key', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-short-'));
  // RLIMIT_FSIZE of 1 KB: the kernel cuts a 3,000-byte write short at 1,024 bytes, then refuses
  // with EFBIG (Node ignores SIGXFSZ). Each write must notice, not report success.
  const script = `
const { openStorage } = require(${JSON.stringify(path.join(ROOT, 'js', 'runtime', 'storage.js'))});
const st = openStorage(${JSON.stringify(path.join(dir, 'store'))});
const big = Buffer.alloc(3000, 65);
(async () => {
  const out = {};
  const ops = {
    put: () => st.put('runs/r/spec.json', big),
    putIfAbsent: () => st.putIfAbsent('runs/r/plan.json', big),
    putStream: () => st.putStream('runs/r/impressions.csv', (async function* () { yield big.subarray(0, 800); yield big.subarray(800); })()),
    small: () => st.put('runs/r/small.json', Buffer.from('{}')),
  };
  for (const [op, f] of Object.entries(ops)) {
    try { await f(); out[op] = 'ok'; } catch (e) { out[op] = { name: e.name, message: e.message }; }
  }
  process.stdout.write(JSON.stringify(out));
})();`;
  try {
    const { stdout } = await execFile('bash', ['-c', 'ulimit -f 1 && exec "$0" -e "$1"', process.execPath, script]);
    const out = JSON.parse(stdout);
    const keys = { put: 'runs/r/spec.json', putIfAbsent: 'runs/r/plan.json', putStream: 'runs/r/impressions.csv' };
    for (const [op, key] of Object.entries(keys)) {
      assert.equal(out[op].name, 'StorageWriteFailed', `${op}: ${JSON.stringify(out[op])}`);
      assert.equal(out[op].message, `storage write of ${key} failed (EFBIG: the file is larger than allowed)`);
      assert.ok(!out[op].message.includes(dir));
    }
    assert.equal(out.small, 'ok');
    // No half-written object is left where a reader would find it, nor a temporary file.
    const left = /** @type {string[]} */ (fs.readdirSync(path.join(dir, 'store', 'runs', 'r'), { recursive: true })).filter((f) => !fs.statSync(path.join(dir, 'store', 'runs', 'r', f)).isDirectory());
    assert.deepEqual(left, ['small.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('input files with a UTF-8 byte-order mark are accepted: specs, scenarios, markets, visits', async () => {
  // The same chunk from files with and without the mark.
  const plain = await rest('simulate-chunk', { spec: 'mini_run.json', index: 0, run_id: 'plain', inline_impressions: true });
  assert.equal(plain.status, 200, plain.text);
  const bom = await rest('simulate-chunk?env=STAGING', { spec: 'mini_run.json', index: 0, run_id: 'bom', inline_impressions: true });
  assert.equal(bom.status, 200, bom.text);
  assert.equal(bom.json.impressions_csv, plain.json.impressions_csv);
  assert.deepEqual(bom.json.summary, plain.json.summary);
  // A run spec file read by run-simulation (JSON.parse in JS).
  const run = await rest('run-simulation?env=STAGING', { 'request-id': 'bom-run', spec: 'mini_run.json' });
  assert.equal(run.status, 200, run.text);
  // A stored market of price.
  const priced = await rest('price?env=STAGING', { market: 'mini', profile: { region: 'C' } });
  assert.equal(priced.status, 200, priced.text);
  assert.ok(priced.json.results[0].rows.length > 0);
});

test('no reply or stored state carries an absolute path: messages, stack traces, log tails, run state', async () => {
  const replies = [];
  const keep = (res) => {
    replies.push(res.text);
    if (res.headers['x-amz-log-result']) replies.push(Buffer.from(res.headers['x-amz-log-result'], 'base64').toString('utf8'));
    return res;
  };
  // Errors about files under the checkout (the DEV data folder is tests/fixtures) and elsewhere.
  const missing = keep(await rest('simulate-chunk', { spec: { ...SPEC, market: 'no-such-market.json' }, index: 0 }));
  refused(missing, 404, 'InputNotFound');
  assert.match(missing.json.errorMessage, /market tests\/fixtures\/no-such-market\.json does not exist/);
  keep(await rest('simulate-chunk?env=STAGING', { spec: { ...SPEC, visits: 'nope.csv' }, index: 0 }));
  keep(await rest('simulate-chunk', { spec: 'no-such-spec.json', index: 0 }));
  keep(await rest('simulate-chunk', { spec: 'lambda', index: 0 }));
  keep(await rest('price?env=STAGING', { market: 'absent', profile: { region: 'C' } }));
  // Function errors with their stack traces and log tails.
  for (const body of [{ spec: { ...SPEC, market: 'no-such-market.json' }, index: 0 }, { spec: 'no-such-spec.json', index: 0 }]) {
    const res = keep(await invoke('tariffsim-simulate-chunk', body, { 'x-amz-log-type': 'Tail' }));
    functionError(res, 'InputNotFound');
    assert.ok(res.json.stackTrace.length > 0);
    assert.ok(res.json.stackTrace.some((frame) => /\(js\/runtime\/[a-z-]+\.js:\d+:\d+\)$/.test(frame)), res.json.stackTrace.join('\n'));
  }
  const priceError = keep(await invoke('tariffsim-price', { ...PRICE, profile: { region: 'Z' } }, { 'x-amz-log-type': 'Tail' }));
  functionError(priceError, 'UnknownRegion');
  // A run that fails in filter-population: its stored state and what the API shows of it.
  const started = keep(await rest('run-simulation', { 'request-id': 'fails-on-visits', spec: { ...SPEC, visits: 'no-such-visits.csv' } }));
  assert.equal(started.status, 200, started.text);
  assert.ok(!started.json.state_url.startsWith('/'), started.json.state_url);
  const { watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const final = /** @type {{status: string, failure?: object}} */ (await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId: 'fails-on-visits', pollMs: 50, timeoutMs: 30000 }));
  assert.equal(final.status, 'failed');
  assert.match(JSON.stringify(final.failure), /visits tests\/fixtures\/no-such-visits\.csv does not exist/);
  keep(await request('GET', '/api/runs/fails-on-visits'));
  keep(await request('GET', '/api/runs/fails-on-visits/summary'));
  const stored = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.json$/.test(e.name)) stored.push([path.relative(storageDir, f), fs.readFileSync(f, 'utf8')]);
    }
  };
  walk(path.join(storageDir, 'runs'));
  assert.ok(stored.some(([f]) => f.endsWith('failed.json')));
  const forbidden = [ROOT, storageDir, bomData, bomMarkets, os.tmpdir() + path.sep];
  for (const text of replies) {
    for (const p of forbidden) assert.ok(!text.includes(p), `a reply names ${p}:\n${text.slice(0, 2000)}`);
  }
  for (const [file, text] of stored) {
    for (const p of forbidden) assert.ok(!text.includes(p), `stored ${file} names ${p}:\n${text.slice(0, 2000)}`);
  }
});
