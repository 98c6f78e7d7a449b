'use strict';
// Run storage on S3, against a real S3-compatible server (moto's, on loopback): the storage
// interface on both backends, and a whole fan-out run kept in a bucket, equal to the native output.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startMoto } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-data-'));
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-folder-'));
const BUCKET = 'tariffsim-runs';

let moto;
let m;

before(async () => {
  moto = await startMoto();
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'eu-west-1',
    TARIFFSIM_STORAGE: `s3://${BUCKET}/dev`,
    TARIFFSIM_S3_ENDPOINT: moto.endpoint,
    TARIFFSIM_DATA_DIR: dataDir,
    TARIFFSIM_LOG_LEVEL: 'WARN',
  });
  delete process.env.REDIS_URL;
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) {
    fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(dataDir, f));
  }
  const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
  const s3 = new S3Client({ region: 'eu-west-1', endpoint: moto.endpoint, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  s3.destroy();
  const { openStorage } = require('../runtime/storage');
  m = {
    openStorage,
    s3: openStorage(`s3://${BUCKET}/dev`, { endpoint: moto.endpoint }),
    run: require('../run-simulation').handler,
    runs: require('../runtime/runs'),
    pubsub: require('../runtime/pubsub'),
    invoke: require('../runtime/invoke'),
  };
});

after(async () => {
  if (m) await m.invoke.idle();
  await moto.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(folder, { recursive: true, force: true });
});

for (const backend of ['folder', 's3']) {
  test(`${backend} storage: put, get, putIfAbsent claims once, list, delete, putStream`, async () => {
    const st = backend === 's3' ? m.s3 : m.openStorage(folder);
    assert.equal(await st.get('t/absent.json'), null);
    await st.put('t/a.json', Buffer.from('one'));
    assert.equal((await st.get('t/a.json')).toString(), 'one');
    const claims = await Promise.all([1, 2, 3, 4].map((i) => st.putIfAbsent('t/lock', Buffer.from(String(i)))));
    assert.equal(claims.filter(Boolean).length, 1, 'exactly one concurrent claim wins');
    assert.equal(await st.putIfAbsent('t/lock', Buffer.from('late')), false);
    async function* parts() {
      yield Buffer.from('ab');
      yield Buffer.from('cd');
    }
    await st.putStream('t/sub/joined.csv', parts());
    assert.equal((await st.get('t/sub/joined.csv')).toString(), 'abcd');
    assert.deepEqual(await st.list('t'), ['t/a.json', 't/lock', 't/sub/joined.csv']);
    await st.delete('t/lock');
    assert.equal(await st.get('t/lock'), null);
    assert.equal(await st.putIfAbsent('t/lock', Buffer.from('again')), true);
    assert.throws(() => st.url('../escape'), (/** @type {Error} */ e) => e.name === 'InvalidReference');
  });
}

test('a fan-out run kept in S3 equals the native output', async () => {
  const spec = { market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 1800, chunk_size: 250, seed: 21, page_size: 5 };
  const watcher = m.runs.watchRun({ storage: m.s3, bus: m.pubsub.openBus(null), runId: 's3-run', pollMs: 200, timeoutMs: 60000 });
  const started = await m.run({ 'request-id': 's3-run', spec }, { awsRequestId: 'x', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:1:function:tariffsim-run-simulation:DEV' });
  assert.match(started.state_url, /^s3:\/\/tariffsim-runs\/dev\/runs\/s3-run$/);
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  const file = path.join(dataDir, 'spec.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-native-'));
  execFileSync(NATIVE, ['simulate', file, '--out', out, '--quiet']);
  const k = m.runs.keys('s3-run');
  assert.ok((await m.s3.get(k.impressions)).equals(fs.readFileSync(path.join(out, 'impressions.csv'))));
  assert.equal((await m.s3.get(k.summary)).toString(), fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(final.result.impressions_url, 's3://tariffsim-runs/dev/runs/s3-run/impressions.csv');
  fs.rmSync(out, { recursive: true, force: true });
});
