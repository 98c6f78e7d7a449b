#!/usr/bin/env node
'use strict';
// npm run bench:server: load on the dev server's Lambda Invoke API.
//
// 1. Baseline, measured in the same run: the `price` handler called in-process, the way the Lambda
//    runtime calls it (JSON text in, an object out), one call at a time.
// 2. Load: 50 concurrent clients, 10,000 synchronous `price` invocations in all, through
//    POST /2015-03-31/functions/tariffsim-price/invocations on a server in its own process (keep-alive
//    HTTP/1.1, as the AWS SDKs do; the clients run in this process with node:http). Errors counted;
//    p50 and p99 latency, and their ratio to the in-process call.
// 3. Memory: the server's resident set through 100,000 calls of warm-up (the heap settling), then
//    over 100,000 more warm calls.
//
//   npm run bench:server -- [--calls 10000] [--concurrency 50] [--memory-calls 100000]

const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { commandLine } = require('./cli');

const USAGE = 'usage: npm run bench:server -- [--calls 10000] [--concurrency 50] [--memory-calls 100000]';
const { freePort, waitForPort } = require('../test/servers');

const ROOT = path.resolve(__dirname, '..', '..');
const EVENT = JSON.stringify({ market: 'sample', profile: { region: 'C', fuel: 'dual_fuel', payment_method: 'direct_debit' }, page_size: 10 });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

/** One keep-alive POST with node:http (lighter on this shared machine than fetch). */
function post(agent, url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-amz-invocation-type': 'RequestResponse' } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, functionError: res.headers['x-amz-function-error'], body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function load(url, calls, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = new Float64Array(calls);
  let next = 0;
  let errors = 0;
  const worker = async () => {
    for (;;) {
      const i = next;
      next += 1;
      if (i >= calls) return;
      const t = performance.now();
      try {
        const res = await post(agent, url, EVENT);
        if (res.status !== 200 || res.functionError || !res.body.startsWith('{"market"')) errors += 1;
      } catch {
        errors += 1;
      }
      latencies[i] = performance.now() - t;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = performance.now() - t0;
  agent.destroy();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return { errors, wall, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

async function main() {
  const parsed = commandLine(process.argv.slice(2), {
    calls: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    'memory-calls': { type: 'string', default: '100000' },
  }, USAGE);
  if (parsed.exit !== undefined) process.exit(parsed.exit);
  const { values } = parsed;
  const calls = Number(values.calls);
  const concurrency = Number(values.concurrency);
  const memoryCalls = Number(values['memory-calls']);

  // Baseline: in-process, as the Lambda runtime calls the handler.
  process.env.TARIFFSIM_LOG_LEVEL = 'ERROR';
  const { handler } = require('../price');
  const ctx = { awsRequestId: 'bench', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:tariffsim-price:DEV' };
  for (let i = 0; i < 2000; i += 1) await handler(EVENT, ctx);
  const inproc = new Float64Array(calls);
  for (let i = 0; i < calls; i += 1) {
    const t = performance.now();
    JSON.stringify(await handler(EVENT, ctx));
    inproc[i] = performance.now() - t;
  }
  const base = Array.from(inproc).sort((a, b) => a - b);
  const baseP50 = percentile(base, 50);
  const baseP99 = percentile(base, 99);

  const port = await freePort();
  const server = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(port)], {
    env: { ...process.env, TARIFFSIM_LOG_LEVEL: 'ERROR' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitForPort(port);
    const url = `http://127.0.0.1:${port}/2015-03-31/functions/tariffsim-price/invocations`;
    await load(url, 2000, concurrency); // warm-up
    const r = await load(url, calls, concurrency);
    const single = await load(url, 2000, 1);
    // Memory: the resident set sampled every quarter of `memoryCalls`, through a warm-up of
    // `memoryCalls` (the heap settling to its working size) and then `memoryCalls` warm calls.
    const samples = [rssKb(server.pid)];
    let memoryErrors = 0;
    for (let q = 0; q < 8; q += 1) {
      memoryErrors += (await load(url, memoryCalls / 4, concurrency)).errors;
      samples.push(rssKb(server.pid));
    }
    const rssWarm = samples[4];
    const rssAfter = samples[8];
    const m = { errors: memoryErrors };
    const ms = (x) => `${(x * 1000).toFixed(0)} µs`;
    const lines = [
      `tariffsim server bench: price on the sample market, page size 10, ${concurrency} concurrent clients, keep-alive HTTP/1.1`,
      '',
      `${'measurement'.padEnd(50)} ${'p50'.padStart(10)} ${'p99'.padStart(10)} ${'p50 ratio'.padStart(10)} ${'p99 ratio'.padStart(10)}`,
      `${'baseline: handler called in-process, one at a time'.padEnd(50)} ${ms(baseP50).padStart(10)} ${ms(baseP99).padStart(10)} ${'1.0'.padStart(10)} ${'1.0'.padStart(10)}`,
      `${`Invoke API, ${calls} calls`.padEnd(50)} ${ms(r.p50).padStart(10)} ${ms(r.p99).padStart(10)} ${(r.p50 / baseP50).toFixed(1).padStart(10)} ${(r.p99 / baseP99).toFixed(1).padStart(10)}`,
      `${'Invoke API, one client, 2000 calls'.padEnd(50)} ${ms(single.p50).padStart(10)} ${ms(single.p99).padStart(10)} ${(single.p50 / baseP50).toFixed(1).padStart(10)} ${(single.p99 / baseP99).toFixed(1).padStart(10)}`,
      '',
      `errors: ${r.errors} of ${calls}; throughput ${(calls / (r.wall / 1000)).toFixed(0)} calls/s (${(r.wall / 1000).toFixed(2)} s)`,
      `memory: server RSS every ${memoryCalls / 4} calls: ${samples.join(', ')} kB (${m.errors} errors); over the last ${memoryCalls} warm calls ${rssWarm} -> ${rssAfter} kB: ${(rssAfter / rssWarm).toFixed(3)}x; target flat within 10%: ${rssAfter <= rssWarm * 1.1 ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    server.kill('SIGTERM');
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
