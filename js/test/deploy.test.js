'use strict';
// Deploy, promote and roll back against a real moto server on loopback (its Lambda control plane,
// S3, IAM and SSM; no Docker, never AWS), with the real Lambda zip; and the configuration per alias
// the zip carries.
//
// moto 5.2.1 does not implement UpdateAlias's RevisionId check, nor change an alias's RevisionId
// when the alias moves (its source says "The RevisionId parameter is not yet implemented"). The
// server started here adds exactly that, as AWS documents it (PreconditionFailedException, HTTP
// 412, when the RevisionId is not the alias's latest), so that the tools' guard against two people
// promoting at once is tested against a server that enforces it.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startMoto } = require('./servers');
const { bundleFiles } = require('../tools/bundle');
const { createZip } = require('../tools/zip');

const ROOT = path.resolve(__dirname, '..', '..');
const ACCOUNT = '123456789012'; // moto's default account
const REGION = 'eu-west-2';

const MOTO_WITH_ALIAS_REVISIONS = `
import json, sys, uuid
from urllib.parse import unquote
from moto.awslambda import models, responses
from moto.awslambda.exceptions import PreconditionFailedException

_update = models.LambdaAlias.update
def update(self, *args, **kwargs):
    _update(self, *args, **kwargs)
    self.revision_id = str(uuid.uuid4())
models.LambdaAlias.update = update

_update_alias = responses.LambdaResponse.update_alias
def update_alias(self):
    revision = json.loads(self.body or "{}").get("RevisionId")
    if revision:
        function_name = unquote(self.path.rsplit("/")[-3])
        alias_name = unquote(self.path.rsplit("/", 2)[-1])
        alias = self.backend.get_alias(name=alias_name, function_name=function_name)
        if alias.revision_id != revision:
            raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id")
    return _update_alias(self)
responses.LambdaResponse.update_alias = update_alias

from moto.server import main
main(sys.argv[1:])
`;

let moto;
let endpoint;
let deployTool;
let promoteTool;
let lambda; // @aws-sdk/client-lambda
let clients;
const zips = {};
const logs = [];
const log = (line) => logs.push(line);


/** The bundle's files with one file changed: a different build. */
function variant(files, marker) {
  const changed = new Map(files);
  const key = 'js/runtime/environment.js';
  changed.set(key, Buffer.concat([files.get(key), Buffer.from(`// build ${marker}\n`)]));
  return createZip(changed);
}

before(async () => {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: REGION, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' });
  delete process.env.AWS_PROFILE;
  moto = await startMoto({ script: MOTO_WITH_ALIAS_REVISIONS });
  endpoint = moto.endpoint;
  const iam = require('@aws-sdk/client-iam');
  const iamClient = new iam.IAMClient({ region: 'us-east-1', endpoint });
  await iamClient.send(
    new iam.CreateRoleCommand({
      RoleName: 'tariffsim-lambda',
      AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
    }),
  );
  iamClient.destroy();
  const files = bundleFiles();
  zips.first = createZip(files);
  zips.second = variant(files, 2);
  zips.third = variant(files, 3);
  deployTool = require('../tools/deploy');
  promoteTool = require('../tools/promote');
  lambda = require('@aws-sdk/client-lambda');
  clients = deployTool.clients({ region: REGION, endpoint });
});

after(async () => {
  if (clients) clients.close();
  if (moto) await moto.stop();
});

const FUNCTIONS = ['tariffsim-price', 'tariffsim-run-simulation', 'tariffsim-filter-population', 'tariffsim-simulate-chunk'];

const deploy = (zip, commit) => deployTool.deploy({ zip, commit, endpoint, region: REGION, account: ACCOUNT, clients, log });
const promote = (options) => promoteTool.promote({ endpoint, region: REGION, clients, log, ...options });

async function aliases(name) {
  const out = await clients.lambda.send(new lambda.ListAliasesCommand({ FunctionName: name }));
  return Object.fromEntries(out.Aliases.map((a) => [a.Name, a.FunctionVersion]));
}

async function versions(name) {
  return (await deployTool.publishedVersions(clients.lambda, name)).map((v) => [v.Version, v.Description]);
}

async function alias(name, which) {
  return clients.lambda.send(new lambda.GetAliasCommand({ FunctionName: name, Name: which }));
}

test('the tests run on the Node.js major the functions deploy on', () => {
  // moto stores any Runtime string without checking it, so this is where a mismatch shows.
  const { runtime } = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'functions.json'), 'utf8'));
  assert.equal(runtime, `nodejs${process.versions.node.split('.')[0]}.x`, `node ${process.version} runs the tests: run them with npm test (node_modules/.bin/node)`);
});

test('the first deploy uploads the zip and creates the four functions, version 1 and their DEV, STAGING and PROD aliases', async () => {
  const out = await deploy(zips.first, 'commit-1');
  const functionsFile = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'functions.json'), 'utf8'));
  for (const name of FUNCTIONS) {
    const target = name.slice('tariffsim-'.length);
    const { Configuration: c } = await clients.lambda.send(new lambda.GetFunctionCommand({ FunctionName: name }));
    assert.equal(c.Runtime, 'nodejs24.x');
    assert.equal(c.Handler, `js/${target}.handler`);
    assert.equal(c.MemorySize, functionsFile.functions[target].memoryMb);
    assert.equal(c.Timeout, functionsFile.functions[target].timeoutSeconds);
    assert.equal(c.Role, `arn:aws:iam::${ACCOUNT}:role/tariffsim-lambda`);
    assert.equal(c.CodeSha256, require('node:crypto').createHash('sha256').update(zips.first).digest('base64'));
    assert.deepEqual(await versions(name), [['1', 'commit-1']]);
    assert.deepEqual(await aliases(name), { DEV: '1', STAGING: '1', PROD: '1' });
  }
  assert.deepEqual(out.functions.map((f) => [f.function, f.created, f.published]), FUNCTIONS.map((f) => [f, true, '1']));
  const s3 = require('@aws-sdk/client-s3');
  const head = await clients.s3.send(new s3.HeadObjectCommand({ Bucket: out.artifact.bucket, Key: out.artifact.key }));
  assert.equal(head.ContentLength, zips.first.length);
  assert.equal(out.artifact.bucket, `tariffsim-artifacts-${ACCOUNT}-${REGION}`);
});

test('a second deploy of the same zip publishes nothing and says so', async () => {
  logs.length = 0;
  const out = await deploy(zips.first, 'commit-1-again');
  assert.ok(out.functions.every((f) => f.unchanged && f.published === null && f.version === '1'));
  for (const name of FUNCTIONS) assert.deepEqual(await versions(name), [['1', 'commit-1']]);
  assert.ok(logs.some((l) => /is there already/.test(l)), 'the zip is not uploaded again');
  assert.ok(logs.some((l) => l === 'nothing published: the code is unchanged'), logs.join('\n'));
  // The command line says the same.
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'js', 'tools', 'deploy.js'), '--endpoint', endpoint, '--region', REGION, '--account', ACCOUNT, '--commit', 'commit-1-cli', '--zip', writeTemp(zips.first)], { encoding: 'utf8', env: process.env });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /tariffsim-price: unchanged: code sha256 .* is version 1's \(commit-1\); nothing published/);
  assert.match(cli.stdout, /nothing published: the code is unchanged/);
});

test('a changed build publishes version 2 and moves DEV only', async () => {
  const out = await deploy(zips.second, 'commit-2');
  assert.deepEqual(out.functions.map((f) => [f.published, f.dev.from, f.dev.to]), FUNCTIONS.map(() => ['2', '1', '2']));
  for (const name of FUNCTIONS) {
    assert.deepEqual(await versions(name), [['1', 'commit-1'], ['2', 'commit-2']]);
    assert.deepEqual(await aliases(name), { DEV: '2', STAGING: '1', PROD: '1' });
    assert.equal(JSON.parse((await alias(name, 'DEV')).Description).previous, '1');
  }
});

test('promote shows the plan first (a dry run changes nothing), then moves STAGING to DEV and PROD to STAGING', async () => {
  logs.length = 0;
  const dry = await promote({ to: 'STAGING', functions: 'all', dryRun: true });
  assert.deepEqual(dry.moved, []);
  assert.match(logs.join('\n'), /tariffsim-price +STAGING 1 \(commit-1\) -> 2 \(commit-2\)/);
  for (const name of FUNCTIONS) assert.equal((await aliases(name)).STAGING, '1', 'a dry run changes nothing');

  const staging = await promote({ to: 'STAGING', functions: ['price', 'simulate-chunk'] });
  assert.deepEqual(staging.moved.map((m) => [m.function, m.from, m.version]), [['tariffsim-price', '1', '2'], ['tariffsim-simulate-chunk', '1', '2']]);
  assert.equal((await aliases('tariffsim-run-simulation')).STAGING, '1', 'only the functions named');
  await promote({ to: 'STAGING', functions: 'all' });
  const prod = await promote({ to: 'PROD', functions: 'all' });
  assert.equal(prod.moved.length, 4);
  for (const name of FUNCTIONS) {
    assert.deepEqual(await aliases(name), { DEV: '2', STAGING: '2', PROD: '2' });
    const d = JSON.parse((await alias(name, 'PROD')).Description);
    assert.equal(d.previous, '1');
    assert.equal(d.via, 'promote from STAGING');
  }
  const again = await promote({ to: 'PROD', functions: 'all' });
  assert.deepEqual(again.moved, [], 'PROD is at STAGING\'s version already');
});

test('a version that is not on the previous stage is refused, and nothing changes', async () => {
  await deploy(zips.third, 'commit-3');
  for (const name of FUNCTIONS) assert.deepEqual(await aliases(name), { DEV: '3', STAGING: '2', PROD: '2' });
  logs.length = 0;
  await assert.rejects(promote({ to: 'PROD', functions: 'all', version: '3' }), (/** @type {Error} */ e) => e.name === 'Refused');
  assert.match(logs.join('\n'), /REFUSED: version 3 is not on STAGING \(STAGING is at version 2\): promote it to STAGING first/);
  for (const name of FUNCTIONS) assert.equal((await aliases(name)).PROD, '2');
  await assert.rejects(promote({ to: 'DEV', functions: 'all' }), (/** @type {Error} */ e) => e.name === 'Refused' && /deploy moves it/.test(e.message));
  // The command line exits non-zero and prints the refusal.
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'js', 'tools', 'promote.js'), '--to', 'PROD', '--all', '--version', '3', '--endpoint', endpoint, '--region', REGION], { encoding: 'utf8', env: process.env });
  assert.equal(cli.status, 1);
  assert.match(cli.stdout, /REFUSED/);
  assert.match(cli.stderr, /promote failed: Refused/);
});

test('PROD rolls back to the version it pointed to before, and a second rollback undoes the first', async () => {
  const back = await promote({ to: 'PROD', functions: 'all', rollback: true });
  assert.deepEqual(back.moved.map((m) => [m.from, m.version]), FUNCTIONS.map(() => ['2', '1']));
  for (const name of FUNCTIONS) {
    assert.equal((await aliases(name)).PROD, '1');
    const d = JSON.parse((await alias(name, 'PROD')).Description);
    assert.deepEqual([d.previous, d.via, d.commit], ['2', 'rollback', 'commit-1']);
  }
  await promote({ to: 'PROD', functions: ['price'], rollback: true });
  assert.equal((await aliases('tariffsim-price')).PROD, '2');
  await promote({ to: 'PROD', functions: ['price'], rollback: true });
  assert.equal((await aliases('tariffsim-price')).PROD, '1');
});

test('two people promoting at once: the second one\'s stale RevisionId is refused, nothing is overwritten', async () => {
  // The server enforces it.
  await assert.rejects(
    clients.lambda.send(new lambda.UpdateAliasCommand({ FunctionName: 'tariffsim-price', Name: 'STAGING', FunctionVersion: '3', RevisionId: 'not-the-latest' })),
    (/** @type {Error} */ e) => e.name === 'PreconditionFailedException',
  );
  // Alice and Bob both plan STAGING -> 3 (DEV's version); Bob moves it first, to 3, and then back
  // to 2 by rollback; Alice's plan, made before, must not silently apply.
  const functions = deployTool.selectFunctions(deployTool.loadFunctions({ region: REGION }), ['price']);
  const alice = await promoteTool.planPromotion(clients.lambda, { to: 'STAGING', functions });
  assert.equal(alice.steps[0].action, 'move');
  await promote({ to: 'STAGING', functions: ['price'] });
  await promote({ to: 'STAGING', functions: ['price'], rollback: true });
  assert.equal((await aliases('tariffsim-price')).STAGING, '2');
  await assert.rejects(promoteTool.applyPromotion(clients.lambda, alice), (/** @type {Error} */ e) => e.name === 'StaleAlias' && /changed since the plan was made/.test(e.message));
  assert.equal((await aliases('tariffsim-price')).STAGING, '2', 'Bob\'s change stands');
});

test('a rollback goes only to a published version the alias recorded; a missing STAGING or PROD is made by promote, not at new code by deploy; an architecture change publishes', async () => {
  // --version with --rollback: refused before anything is read.
  await assert.rejects(promote({ to: 'PROD', functions: ['price'], rollback: true, version: '7' }), (/** @type {Error} */ e) => e.name === 'InvalidArguments');
  // A recorded previous version that is not a published one ($LATEST, the unpublished code).
  const staging = await alias('tariffsim-simulate-chunk', 'STAGING');
  await clients.lambda.send(new lambda.UpdateAliasCommand({ FunctionName: 'tariffsim-simulate-chunk', Name: 'STAGING', FunctionVersion: staging.FunctionVersion, Description: JSON.stringify({ previous: '$LATEST' }) }));
  logs.length = 0;
  await assert.rejects(promote({ to: 'STAGING', functions: ['simulate-chunk'], rollback: true }), (/** @type {Error} */ e) => e.name === 'Refused');
  assert.match(logs.join('\n'), /is not a published version/);
  assert.equal((await aliases('tariffsim-simulate-chunk')).STAGING, staging.FunctionVersion);

  // PROD deleted by hand: a deploy of new code does not make it at that code.
  await clients.lambda.send(new lambda.DeleteAliasCommand({ FunctionName: 'tariffsim-filter-population', Name: 'PROD' }));
  logs.length = 0;
  const out = await deployTool.deploy({ zip: zips.first, commit: 'commit-4', endpoint, region: REGION, account: ACCOUNT, clients, log, functions: ['filter-population'] });
  assert.equal(out.functions[0].published, '4');
  assert.deepEqual(out.functions[0].aliasesCreated, []);
  assert.equal((await aliases('tariffsim-filter-population')).PROD, undefined);
  assert.match(logs.join('\n'), /PROD alias is missing: not made at version 4; run npm run promote -- --to PROD to make it/);
  // promote makes it, from STAGING.
  await promote({ to: 'PROD', functions: ['filter-population'] });
  const fp = await aliases('tariffsim-filter-population');
  assert.equal(fp.PROD, fp.STAGING);

  // The same code on another architecture is a new version (memory, timeout and architecture
  // belong to a version).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-arch-'));
  try {
    const file = path.join(dir, 'functions.json');
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'functions.json'), 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...config, architecture: 'arm64' }));
    const arm = await deployTool.deploy({ zip: zips.first, commit: 'commit-4-arm', endpoint, region: REGION, account: ACCOUNT, clients, log, functions: ['filter-population'], file });
    assert.equal(arm.functions[0].published, '5', 'an architecture change publishes');
    // (moto keeps x86_64 whatever UpdateFunctionCode asks, so "and then nothing" cannot be seen here.)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function writeTemp(bytes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-deploy-'));
  const file = path.join(dir, 'tariffsim-lambda.zip');
  fs.writeFileSync(file, bytes);
  return file;
}

// Configuration per alias.

test('the zip carries the configuration per alias, with references to secrets and never their values', () => {
  const files = bundleFiles();
  for (const name of ['config/environments.json', 'config/functions.json', 'config/prices.json']) assert.ok(files.has(name), name);
  const envs = JSON.parse(files.get('config/environments.json')).environments;
  assert.deepEqual(Object.keys(envs), ['DEV', 'STAGING', 'PROD']);
  for (const [name, e] of Object.entries(envs)) {
    assert.deepEqual(Object.keys(e.redisUrl), ['ssm'], `${name}.redisUrl is a reference`);
    assert.match(e.redisUrl.ssm, new RegExp(`^/tariffsim/${name.toLowerCase()}/`));
  }
  assert.notEqual(envs.STAGING.storage, envs.PROD.storage, 'STAGING has its own bucket');
  for (const [name, bytes] of files) {
    if (!name.startsWith('config/')) continue;
    const text = bytes.toString('utf8');
    assert.doesNotMatch(text, /[a-z]+:\/\/[^/\s"]*:[^@/\s"]*@/i, `${name}: no credentials in a URL`);
    assert.doesNotMatch(text, /(password|secret|token)"\s*:\s*"/i, `${name}: no secret values`);
  }
});

test('in Lambda each alias gets its own values from the file; environment variables override single values; development keeps its local folder and bus', () => {
  const { loadConfig } = require('../runtime/config');
  const lambdaEnv = { AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-run-simulation', TMPDIR: '/tmp' };
  const cfg = loadConfig(lambdaEnv);
  assert.equal(cfg.forEnvironment('STAGING').storage, 's3://tariffsim-runs-staging/runs');
  assert.equal(cfg.forEnvironment('PROD').storage, 's3://tariffsim-runs-prod/runs');
  assert.equal(cfg.forEnvironment('PROD').chunkBudget, 200);
  assert.equal(cfg.forEnvironment('DEV').chunkBudget, 10);
  assert.throws(() => cfg.forEnvironment('PROD').redisUrl, (/** @type {Error} */ e) => e.name === 'SecretNotResolved' && e.message.includes('/tariffsim/prod/redis-url'));
  // NAME_<ENV>, then NAME, win over the file.
  const over = loadConfig({ ...lambdaEnv, REDIS_URL_PROD: 'redis://prod-override:6379', TARIFFSIM_CHUNK_BUDGET: '7', TARIFFSIM_STORAGE_STAGING: 's3://elsewhere/x' });
  assert.equal(over.forEnvironment('PROD').redisUrl, 'redis://prod-override:6379');
  assert.deepEqual(over.forEnvironment('PROD').secretRefs, {});
  assert.equal(over.forEnvironment('STAGING').chunkBudget, 7);
  assert.equal(over.forEnvironment('STAGING').storage, 's3://elsewhere/x');
  assert.equal(over.forEnvironment('PROD').storage, 's3://tariffsim-runs-prod/runs');
  // Development: the file's budgets apply, its infrastructure does not.
  const dev = loadConfig({ TMPDIR: '/tmp' });
  assert.equal(dev.forEnvironment('PROD').storage, path.resolve('/tmp/tariffsim/out'));
  assert.equal(dev.forEnvironment('PROD').redisUrl, null);
  assert.equal(dev.forEnvironment('STAGING').chunkBudget, 50);
  // A file with a typo is refused at load, not ignored.
  const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-config-')), 'environments.json');
  fs.writeFileSync(bad, JSON.stringify({ environments: { PROD: { chunkBudgt: 5 } } }));
  assert.throws(() => loadConfig({ TARIFFSIM_CONFIG_FILE: bad }), (/** @type {Error} */ e) => e.name === 'InvalidConfig' && /chunkBudgt is not a setting/.test(e.message));
});

test('a secret reference is resolved through SSM (moto), cached, and refused clearly when missing', async () => {
  const ssm = require('@aws-sdk/client-ssm');
  const ssmClient = new ssm.SSMClient({ region: REGION, endpoint });
  await ssmClient.send(new ssm.PutParameterCommand({ Name: '/tariffsim/prod/redis-url', Type: 'SecureString', Value: 'redis://:s3cret@prod-redis:6379' }));
  const { loadConfig, resolveSecrets } = require('../runtime/config');
  const cfg = loadConfig({ AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-run-simulation', TARIFFSIM_SSM_ENDPOINT: endpoint, AWS_REGION: REGION, TMPDIR: '/tmp' });
  const prod = cfg.forEnvironment('PROD');
  const resolved = await resolveSecrets(prod);
  assert.equal(resolved.redisUrl, 'redis://:s3cret@prod-redis:6379');
  assert.equal(resolved.storage, 's3://tariffsim-runs-prod/runs');
  assert.equal(resolved.chunkBudget, 200);
  // Cached: a changed parameter is read again only after the TTL.
  await ssmClient.send(new ssm.PutParameterCommand({ Name: '/tariffsim/prod/redis-url', Type: 'SecureString', Value: 'redis://:rotated@prod-redis:6379', Overwrite: true }));
  assert.equal((await resolveSecrets(prod)).redisUrl, 'redis://:s3cret@prod-redis:6379');
  assert.equal((await resolveSecrets(prod, { ttlMs: 0 })).redisUrl, 'redis://:rotated@prod-redis:6379');
  // Nothing for settings without references.
  const noRefs = loadConfig({ AWS_LAMBDA_FUNCTION_NAME: 'f', REDIS_URL: 'redis://local:6379', TMPDIR: '/tmp' }).forEnvironment('PROD');
  assert.equal(await resolveSecrets(noRefs), noRefs);
  // STAGING's parameter does not exist in this account.
  await assert.rejects(resolveSecrets(cfg.forEnvironment('STAGING')), (/** @type {Error} */ e) => e.name === 'SecretNotFound' && e.message.includes('/tariffsim/staging/redis-url'));
  ssmClient.destroy();
});

test('a PROD price request in Lambda works with its secrets unresolved and loads no AWS SDK', () => {
  const script = `
    const { handler } = require('./js/price');
    handler({ market: 'sample', profile: { region: 'C' }, page_size: 1 }, { awsRequestId: 'r1', invokedFunctionArn: 'arn:aws:lambda:eu-west-2:${ACCOUNT}:function:tariffsim-price:PROD' })
      .then((out) => {
        const sdk = Object.keys(require.cache).filter((f) => f.includes('node_modules'));
        process.stdout.write(JSON.stringify({ rows: out.results[0].rows.length, sdk }));
      }, (e) => { process.stderr.write(e.stack); process.exit(1); });
  `;
  const out = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-price', TARIFFSIM_LOG_LEVEL: 'ERROR' } });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { rows: 1, sdk: [] });
});
