#!/usr/bin/env node
'use strict';
// npm run deploy: puts the Lambda zip on every function's DEV alias.
//
//   npm run deploy -- [--zip dist/tariffsim-lambda.zip] [--endpoint URL] [--region R]
//                     [--account ID] [--role ARN] [--bucket B] [--commit SHA] [--functions a,b]
//
// 1. uploads the zip to S3 under its content hash (s3://<bucket>/lambda/<sha256>.zip; kept if there
//    already), creating the artifact bucket the first time;
// 2. for each function of config/functions.json (tariffsim-price, -run-simulation,
//    -filter-population, -simulate-chunk): creates it the first time (runtime, handler, role,
//    memory, timeout, architecture from the file) with its DEV, STAGING and PROD aliases; else
//    brings its configuration in line with the file and updates its code from the S3 object,
//    waiting for each update to finish;
// 3. publishes a version whose description is the git commit (`git rev-parse HEAD`, `+dirty` when
//    the work tree has changes; or --commit), unless the code and configuration are those of the
//    latest published version (same CodeSha256): then it publishes nothing and says so;
// 4. moves DEV to the new version (UpdateAlias with the alias's RevisionId; the alias description
//    keeps the version it pointed to before). STAGING and PROD move only by `npm run promote`.
//
// --endpoint points every AWS client at one endpoint (a moto server in tests and CI: CI never
// reaches AWS). Credentials and region come from the usual AWS SDK chain.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { commandLine } = require('./cli');

const ROOT = path.resolve(__dirname, '..', '..');
const FUNCTIONS_FILE = path.join(ROOT, 'config', 'functions.json');
/** The environments, lowest first: DEV is deployed, STAGING and PROD are promoted to. */
const STAGES = Object.freeze(['DEV', 'STAGING', 'PROD']);

class DeployError extends Error {
  /**
   * @param {string} code the error's name
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    /** The refused steps of a promotion, when it was refused. @type {object[]|undefined} */
    this.refused = undefined;
    Object.defineProperty(this, 'name', { value: code, writable: true, configurable: true });
  }
}

/**
 * config/functions.json with {account} and {region} filled in.
 * @param {{file?: string, region?: string, account?: string, role?: string, bucket?: string}} options
 */
function loadFunctions(options = {}) {
  const file = options.file || FUNCTIONS_FILE;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const region = options.region || process.env.AWS_REGION || raw.region;
  const account = options.account || process.env.AWS_ACCOUNT_ID || (options.role ? options.role.split(':')[4] : undefined);
  // null when the pattern needs an account nobody gave (deploy refuses then; promote needs neither)
  const fill = (pattern) => {
    const out = pattern.replace(/\{region\}/g, region);
    if (!out.includes('{account}')) return out;
    return account ? out.replace(/\{account\}/g, account) : null;
  };
  const functions = Object.entries(raw.functions).map(([target, f]) => ({
    target,
    name: `${raw.functionPrefix}${target}`,
    handler: f.handler,
    memoryMb: f.memoryMb,
    timeoutSeconds: f.timeoutSeconds,
  }));
  return {
    file,
    region,
    runtime: raw.runtime,
    architecture: raw.architecture,
    prefix: raw.functionPrefix,
    artifactPrefix: raw.artifactPrefix,
    aliases: raw.aliases || STAGES,
    role: options.role || fill(raw.role),
    bucket: options.bucket || fill(raw.artifactBucket),
    patterns: { role: raw.role, bucket: raw.artifactBucket },
    functions,
  };
}

/**
 * The functions a command acts on: `all`, or names (targets like `price` or full function names).
 * @param {ReturnType<typeof loadFunctions>} cfg
 * @param {string[]|'all'|undefined} names
 */
function selectFunctions(cfg, names) {
  if (names === undefined || names === 'all') return cfg.functions;
  return names.map((n) => {
    const f = cfg.functions.find((x) => x.target === n || x.name === n);
    if (!f) throw new DeployError('UnknownFunction', `no function ${JSON.stringify(n)}: the functions are ${cfg.functions.map((x) => x.target).join(', ')}`);
    return f;
  });
}

/**
 * The AWS SDK clients the tools use.
 * @typedef {{lambda: import('@aws-sdk/client-lambda').LambdaClient, s3: import('@aws-sdk/client-s3').S3Client, close: () => void}} Clients
 */

/**
 * AWS SDK clients, all at `endpoint` when given (a moto server).
 * @param {{region: string, endpoint?: string}} options
 * @returns {Clients}
 */
function clients({ region, endpoint }) {
  const lambda = require('@aws-sdk/client-lambda');
  const s3 = require('@aws-sdk/client-s3');
  const common = { region, ...(endpoint ? { endpoint } : {}) };
  return {
    lambda: new lambda.LambdaClient(common),
    s3: new s3.S3Client({ ...common, ...(endpoint ? { forcePathStyle: true } : {}) }),
    close() {
      this.lambda.destroy();
      this.s3.destroy();
    },
  };
}

/** The commit the zip was built from: git's HEAD, `+dirty` when the work tree has changes. */
function gitCommit(cwd = ROOT) {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    throw new DeployError('NoCommit', 'git rev-parse HEAD failed: give --commit');
  }
}

/**
 * An alias description that keeps the version the alias pointed to before (for rollback) and who
 * moved it, how and when: a JSON object (at most 256 characters, Lambda's limit).
 */
function aliasDescription({ previous, via, commit, at = new Date().toISOString(), by = userName() }) {
  const d = { previous: previous === undefined || previous === null ? null : String(previous), via, commit: commit ? String(commit).slice(0, 12) : undefined, by: String(by).slice(0, 40), at };
  return JSON.stringify(d);
}

/** The fields of an alias description (null when it is not one of ours). */
function parseAliasDescription(text) {
  if (typeof text !== 'string' || !text.startsWith('{')) return null;
  try {
    const d = JSON.parse(text);
    return d && typeof d === 'object' ? d : null;
  } catch {
    return null;
  }
}

function userName() {
  try {
    return process.env.GITHUB_ACTOR || process.env.USER || os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

const isNotFound = (e) => e && (e.name === 'ResourceNotFoundException' || e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'NoSuchBucket' || (e.$metadata && e.$metadata.httpStatusCode === 404));

/** Every published version of a function (not $LATEST), oldest first. */
async function publishedVersions(lambdaClient, name) {
  const { ListVersionsByFunctionCommand } = require('@aws-sdk/client-lambda');
  const out = [];
  let Marker;
  do {
    const page = await lambdaClient.send(new ListVersionsByFunctionCommand({ FunctionName: name, Marker }));
    out.push(...(page.Versions || []).filter((v) => v.Version !== '$LATEST'));
    Marker = page.NextMarker;
  } while (Marker);
  return out.sort((a, b) => Number(a.Version) - Number(b.Version));
}

/** A function's aliases by name. */
async function aliasesOf(lambdaClient, name) {
  const { ListAliasesCommand } = require('@aws-sdk/client-lambda');
  const out = {};
  let Marker;
  do {
    const page = await lambdaClient.send(new ListAliasesCommand({ FunctionName: name, Marker }));
    for (const a of page.Aliases || []) out[a.Name] = a;
    Marker = page.NextMarker;
  } while (Marker);
  return out;
}

/** Uploads the zip under its content hash, unless it is there; creates the bucket if needed. */
async function uploadZip(s3Client, { bucket, key, zip, region, commit }, log) {
  const s3 = require('@aws-sdk/client-s3');
  try {
    await s3Client.send(new s3.HeadBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if (!isNotFound(e)) throw e;
    await s3Client.send(new s3.CreateBucketCommand({ Bucket: bucket, ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region } }) }));
    log(`created bucket ${bucket}`);
  }
  try {
    const head = await s3Client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength === zip.length) {
      log(`s3://${bucket}/${key} is there already (${zip.length} bytes)`);
      return false;
    }
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  await s3Client.send(new s3.PutObjectCommand({ Bucket: bucket, Key: key, Body: zip, ContentType: 'application/zip', Metadata: { commit: String(commit).slice(0, 64) } }));
  log(`uploaded s3://${bucket}/${key} (${zip.length} bytes)`);
  return true;
}

const WAIT = { maxWaitTime: 300, minDelay: 1, maxDelay: 5 };

/** What differs between a function's configuration and the file's (empty: nothing). */
function configDrift(current, f, cfg) {
  const want = { Handler: f.handler, Runtime: cfg.runtime, MemorySize: f.memoryMb, Timeout: f.timeoutSeconds, Role: cfg.role };
  return Object.entries(want)
    .filter(([k, v]) => current[k] !== v)
    .map(([k, v]) => ({ field: k, from: current[k], to: v }));
}

/**
 * Deploys one function: created or updated, a version published unless nothing changed, DEV moved.
 * @returns {Promise<{function: string, created: boolean, published: string|null, version: string, dev: {from: string|null, to: string}, unchanged: boolean, aliasesCreated: string[]}>}
 */
async function deployFunction(lambdaClient, f, cfg, artifact, log) {
  const l = require('@aws-sdk/client-lambda');
  const say = (m) => log(`${f.name}: ${m}`);
  let current = null;
  try {
    current = (await lambdaClient.send(new l.GetFunctionCommand({ FunctionName: f.name }))).Configuration;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  let created = false;
  let configChanged = false;
  if (current === null) {
    await lambdaClient.send(
      new l.CreateFunctionCommand({
        FunctionName: f.name,
        Runtime: cfg.runtime,
        Role: cfg.role,
        Handler: f.handler,
        Code: { S3Bucket: artifact.bucket, S3Key: artifact.key },
        MemorySize: f.memoryMb,
        Timeout: f.timeoutSeconds,
        Architectures: [cfg.architecture],
        Description: `tariffsim ${f.target} (${f.handler})`,
        Publish: false,
      }),
    );
    await l.waitUntilFunctionActiveV2({ client: lambdaClient, ...WAIT }, { FunctionName: f.name });
    current = (await lambdaClient.send(new l.GetFunctionCommand({ FunctionName: f.name }))).Configuration;
    created = true;
    say(`created (${cfg.runtime}, ${f.handler}, ${f.memoryMb} MB, ${f.timeoutSeconds} s, ${cfg.architecture})`);
  } else {
    const drift = configDrift(current, f, cfg);
    if (drift.length > 0) {
      await lambdaClient.send(
        new l.UpdateFunctionConfigurationCommand({
          FunctionName: f.name,
          Handler: f.handler,
          Runtime: cfg.runtime,
          MemorySize: f.memoryMb,
          Timeout: f.timeoutSeconds,
          Role: cfg.role,
          RevisionId: current.RevisionId,
        }),
      );
      await l.waitUntilFunctionUpdatedV2({ client: lambdaClient, ...WAIT }, { FunctionName: f.name });
      current = (await lambdaClient.send(new l.GetFunctionCommand({ FunctionName: f.name }))).Configuration;
      configChanged = true;
      say(`configuration: ${drift.map((d) => `${d.field} ${d.from} -> ${d.to}`).join(', ')}`);
    }
    const arch = (current.Architectures || ['x86_64'])[0];
    if (current.CodeSha256 !== artifact.sha256 || arch !== cfg.architecture) {
      await lambdaClient.send(
        new l.UpdateFunctionCodeCommand({ FunctionName: f.name, S3Bucket: artifact.bucket, S3Key: artifact.key, Architectures: [cfg.architecture], RevisionId: current.RevisionId }),
      );
      await l.waitUntilFunctionUpdatedV2({ client: lambdaClient, ...WAIT }, { FunctionName: f.name });
      current = (await lambdaClient.send(new l.GetFunctionCommand({ FunctionName: f.name }))).Configuration;
      say(`code updated from s3://${artifact.bucket}/${artifact.key}`);
    }
  }
  if (current.CodeSha256 !== artifact.sha256) {
    throw new DeployError('CodeMismatch', `${f.name}: $LATEST has code ${current.CodeSha256} after the update, the zip is ${artifact.sha256}: someone else is deploying; try again`);
  }

  const versions = await publishedVersions(lambdaClient, f.name);
  const latest = versions.at(-1) || null;
  let version;
  let published = null;
  // The same code, configuration and architecture as the last version: nothing to publish.
  const archOf = (c) => (c.Architectures || ['x86_64'])[0];
  const unchanged = latest !== null && latest.CodeSha256 === artifact.sha256 && archOf(latest) === cfg.architecture && !configChanged && configDrift(latest, f, cfg).length === 0;
  if (unchanged) {
    version = latest.Version;
    say(`unchanged: code sha256 ${artifact.sha256} is version ${version}'s (${latest.Description || 'no description'}); nothing published`);
  } else {
    const out = await lambdaClient.send(new l.PublishVersionCommand({ FunctionName: f.name, Description: artifact.commit, CodeSha256: artifact.sha256 }));
    await l.waitUntilPublishedVersionActive({ client: lambdaClient, ...WAIT }, { FunctionName: f.name, Qualifier: out.Version });
    version = out.Version;
    published = version;
    say(`published version ${version} (${artifact.commit})`);
  }

  // Aliases: all three made on the first deploy (at the first version: there is nothing else to
  // serve), then only DEV moves here. A STAGING or PROD missing later (deleted by hand) is not made
  // at new, untested code: `npm run promote` makes it, from the stage before it.
  const aliases = await aliasesOf(lambdaClient, f.name);
  const aliasesCreated = [];
  const firstVersion = (await publishedVersions(lambdaClient, f.name)).length <= 1;
  let dev = { from: aliases.DEV ? aliases.DEV.FunctionVersion : null, to: version };
  for (const name of cfg.aliases) {
    if (aliases[name]) continue;
    if (name !== 'DEV' && !firstVersion) {
      say(`${name} alias is missing: not made at version ${version}; run npm run promote -- --to ${name} to make it`);
      continue;
    }
    await lambdaClient.send(new l.CreateAliasCommand({ FunctionName: f.name, Name: name, FunctionVersion: version, Description: aliasDescription({ previous: null, via: 'deploy', commit: artifact.commit }) }));
    aliasesCreated.push(name);
  }
  if (aliasesCreated.length > 0) say(`aliases ${aliasesCreated.join(', ')} created at version ${version}`);
  if (aliases.DEV && aliases.DEV.FunctionVersion !== version) {
    await lambdaClient.send(
      new l.UpdateAliasCommand({
        FunctionName: f.name,
        Name: 'DEV',
        FunctionVersion: version,
        RevisionId: aliases.DEV.RevisionId,
        Description: aliasDescription({ previous: aliases.DEV.FunctionVersion, via: 'deploy', commit: artifact.commit }),
      }),
    );
    say(`DEV ${aliases.DEV.FunctionVersion} -> ${version}`);
  } else if (aliases.DEV) {
    dev = { from: version, to: version };
    say(`DEV is at version ${version} already`);
  }
  return { function: f.name, created, published, version, dev, unchanged, aliasesCreated };
}

/**
 * Deploys the zip to every function (or those named).
 * @param {{zip?: Buffer, zipFile?: string, endpoint?: string, region?: string, account?: string,
 *   role?: string, bucket?: string, commit?: string, functions?: string[]|'all', file?: string,
 *   log?: (line: string) => void, clients?: Clients}} options
 * @returns {Promise<{artifact: object, functions: object[]}>}
 */
async function deploy(options = {}) {
  const log = options.log || ((line) => process.stdout.write(`${line}\n`));
  const cfg = loadFunctions(options);
  for (const [what, flag] of [['role', '--role'], ['bucket', '--bucket']]) {
    if (!cfg[what]) throw new DeployError('MissingAccount', `the ${what} ${cfg.patterns[what]} needs the AWS account: give --account (or AWS_ACCOUNT_ID), or ${flag}`);
  }
  const selected = selectFunctions(cfg, options.functions);
  const zipFile = options.zipFile || path.join(ROOT, 'dist', 'tariffsim-lambda.zip');
  let zip = options.zip;
  if (zip === undefined) {
    if (!fs.existsSync(zipFile)) throw new DeployError('NoZip', `${zipFile} does not exist: run npm run bundle first`);
    zip = fs.readFileSync(zipFile);
  }
  const digest = crypto.createHash('sha256').update(zip).digest();
  const commit = options.commit || gitCommit();
  const artifact = {
    bucket: cfg.bucket,
    key: `${cfg.artifactPrefix}/${digest.toString('hex')}.zip`,
    sha256: digest.toString('base64'),
    commit,
  };
  log(`deploy ${commit} (zip sha256 ${digest.toString('hex').slice(0, 16)}…, ${zip.length} bytes) to ${selected.map((f) => f.name).join(', ')} in ${cfg.region}${options.endpoint ? ` at ${options.endpoint}` : ''}`);
  const c = options.clients || clients({ region: cfg.region, endpoint: options.endpoint });
  try {
    await uploadZip(c.s3, { ...artifact, zip, region: cfg.region }, log);
    const results = [];
    for (const f of selected) results.push(await deployFunction(c.lambda, f, cfg, artifact, log));
    const published = results.filter((r) => r.published);
    log(published.length === 0 ? 'nothing published: the code is unchanged' : `published ${published.map((r) => `${r.function}:${r.published}`).join(', ')}; DEV ${published.every((r) => r.aliasesCreated.includes('DEV')) ? 'made' : 'moved'}`);
    return { artifact, functions: results };
  } finally {
    if (!options.clients) c.close();
  }
}

const USAGE = 'usage: npm run deploy -- [--zip FILE] [--endpoint URL] [--region R] [--account ID] [--role ARN] [--bucket B] [--commit SHA] [--functions a,b]';

async function main(argv = process.argv.slice(2)) {
  const parsed = commandLine(argv, {
        zip: { type: 'string' },
        endpoint: { type: 'string' },
        region: { type: 'string' },
        account: { type: 'string' },
        role: { type: 'string' },
        bucket: { type: 'string' },
        commit: { type: 'string' },
        functions: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
  }, USAGE);
  if (parsed.exit !== undefined) return parsed.exit;
  const { values } = parsed;
  try {
    await deploy({
      zipFile: values.zip ? path.resolve(values.zip) : undefined,
      endpoint: values.endpoint,
      region: values.region,
      account: values.account,
      role: values.role,
      bucket: values.bucket,
      commit: values.commit,
      functions: values.functions ? values.functions.split(',').map((s) => s.trim()) : 'all',
    });
    return 0;
  } catch (e) {
    process.stderr.write(`deploy failed: ${e.name}: ${e.message}\n`);
    return 1;
  }
}

if (require.main === module) main().then((code) => (process.exitCode = code));

module.exports = {
  STAGES,
  DeployError,
  loadFunctions,
  selectFunctions,
  clients,
  gitCommit,
  aliasDescription,
  parseAliasDescription,
  publishedVersions,
  aliasesOf,
  deploy,
  main,
};
