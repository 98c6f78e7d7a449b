'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { createLogger, isoOf } = require('../runtime/logging');
const { typed } = require('../runtime/errors');
const path = require('node:path');
const { spawn } = require('node:child_process');

const fixedNow = () => new Date('2026-07-01T08:15:00.123Z');

function collector() {
  const lines = [];
  return { lines, write: (text) => lines.push(text) };
}

test('text lines carry timestamp, environment, request id and level', () => {
  const out = collector();
  const log = createLogger({ write: out.write, now: fixedNow }).bind('PROD', 'req-1');
  log.info('hello');
  log.warn('careful');
  assert.deepEqual(out.lines, [
    '2026-07-01T08:15:00.123Z [PROD][req-1][INFO] -- hello\n',
    '2026-07-01T08:15:00.123Z [PROD][req-1][WARN] -- careful\n',
  ]);
});

test('timestamps are written as toISOString writes them, without a Date (leap days, centuries, the ends of days)', () => {
  const edges = [0, 1, 999, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2100, 2, 1), Date.UTC(2026, 11, 31, 23, 59, 59, 10), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.now()];
  // A fixed pseudo-random walk over 1970 to 9999.
  let x = 12345;
  for (let i = 0; i < 20_000; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    edges.push(Math.floor((x / 2_147_483_648) * Date.UTC(9999, 11, 31)));
  }
  for (const ms of edges) assert.equal(isoOf(ms), new Date(ms).toISOString(), String(ms));
});

test('the timestamp is ISO-8601 from the clock', () => {
  const out = collector();
  createLogger({ write: out.write }).bind('DEV', 'r').info('x');
  assert.match(out.lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[DEV\]\[r\]\[INFO\] -- x\n$/);
});

test('errors are logged with their stack, one record', () => {
  const out = collector();
  const log = createLogger({ write: out.write, now: fixedNow, lineBreak: '\r' }).bind('STAGING', 'req-2');
  log.error('price failed', typed('UnknownRegion', 'profiles[0].region: unknown region "Z"'));
  assert.equal(out.lines.length, 1);
  const [record] = out.lines;
  assert.ok(record.startsWith('2026-07-01T08:15:00.123Z [STAGING][req-2][ERROR] -- price failed\rUnknownRegion: profiles[0].region: unknown region "Z"\r    at '), record);
  assert.ok(record.endsWith('\n'));
  assert.equal(record.split('\n').length, 2, 'CR-joined: CloudWatch keeps it as one event');
});

test('the JSON format writes one object per line with the same fields', () => {
  const out = collector();
  const log = createLogger({ format: 'json', write: out.write, now: fixedNow }).bind('PROD', 'req-3');
  log.info('done');
  log.error('failed', typed('NoSuchChunk', 'chunk 9 does not exist'));
  const [info, error] = out.lines.map((l) => {
    assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'));
    return JSON.parse(l);
  });
  assert.deepEqual(info, { timestamp: '2026-07-01T08:15:00.123Z', level: 'INFO', env: 'PROD', requestId: 'req-3', message: 'done' });
  assert.equal(error.level, 'ERROR');
  assert.equal(error.errorType, 'NoSuchChunk');
  assert.equal(error.errorMessage, 'chunk 9 does not exist');
  assert.ok(Array.isArray(error.stackTrace) && error.stackTrace[0] === 'NoSuchChunk: chunk 9 does not exist');
});

test('levels below the configured one are not written', () => {
  const out = collector();
  const log = createLogger({ write: out.write }).bind('DEV', 'r', 'WARN');
  log.debug('no');
  log.info('no');
  log.warn('yes');
  log.error('yes');
  assert.equal(out.lines.length, 2);
  assert.equal(log.enabled('INFO'), false);
  assert.equal(log.enabled('ERROR'), true);
});

test('a closed standard output loses log lines, never the request that writes them', async () => {
  // A child whose standard output is a pipe nobody reads any more (writes fail with EPIPE)
  // answers a price request and reports on standard error.
  const script = `
    const { handler } = require(${JSON.stringify(path.join(__dirname, '..', 'price.js'))});
    setTimeout(() => handler({ market: 'sample', profile: { region: 'C' } }, { awsRequestId: 'r' })
      .then((r) => process.stderr.write('ROWS ' + r.results[0].rows.length + '\\n'), (e) => process.stderr.write('FAILED ' + e.name + ': ' + e.message + '\\n')), 300);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.match(err, /ROWS 10\n/, err);
  assert.equal(code, 0);
});
