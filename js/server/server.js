'use strict';
// The development server: every lambda of the monorepo behind one local web server.
//
//   POST /lambdas/<name>                                  plain REST: JSON in, JSON out
//   POST /2015-03-31/functions/<FunctionName>/invocations  the AWS Lambda Invoke API, as AWS serves
//        it, so an unchanged AWS SDK (Ruby's Aws::Lambda::Client, boto3, the JS SDK v3) works by
//        pointing its endpoint here
//   GET  /                                                 the run page
//   GET  /api/...                                          what the page needs: tariffs, run events
//                                                          (server-sent events), summary, impressions
//
// Requests signed with SigV4 are accepted; the signature is not verified locally. Host names,
// origins and content types are checked first (guard.js): a server left running is safe from the
// web pages its user visits. No reply names a file by its absolute path (runtime/paths.js).

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const Fastify = require('fastify');
const { config } = require('../runtime/config');
const { localHandler: handlerOf, runAsEvent } = require('../runtime/invoke');
const { DEFAULT_REGION, functionName, lambdaOf } = require('../runtime/functions');
const { pipelineOf } = require('../runtime/pipeline');
const { RUN_ID, keys, readState, watchRun } = require('../runtime/runs');
const { closeWorkers } = require('../runtime/workers');
const { withTail } = require('../runtime/logging');
const { readInput } = require('../runtime/inputs');
const { scrubPaths } = require('../runtime/paths');
const { codes, typed } = require('../runtime/errors');
const { requestGuard, frameworkErrors } = require('./guard');
const { acquireRunner } = require('./runner');
const { EventJournal } = require('./event-journal');

/** @typedef {InstanceType<typeof import('../runtime/storage').FolderStorage>} FolderStorage */

const MB = 1024 * 1024;
/** Lambda's payload limits: 6 MB for a synchronous invocation, 1 MB for an asynchronous one. */
const LIMITS = Object.freeze({ RequestResponse: 6 * MB, Event: 1 * MB, DryRun: 6 * MB });
const INVOCATION_TYPES = new Set(Object.keys(LIMITS));
const REGION = process.env.AWS_REGION || DEFAULT_REGION;
const ACCOUNT = '000000000000';
const TAIL_BYTES = 4096;
/** The longest path parameter the router takes (a longer one is a typed 414). */
const MAX_PARAM_LENGTH = 1024;
const STATUS_BY_ERROR = Object.freeze({
  InvalidJson: 400,
  InvalidRequest: 400,
  NestingTooDeep: 400,
  InvalidReference: 400,
  PayloadTooLarge: 413,
  RequestTooLarge: 413,
  UnknownMarket: 404,
  UnknownRun: 404,
  InputNotFound: 404,
  RunExists: 409,
  // The run page's API (registerPage): a run that exists but has not ended done has no outputs yet
  // (or never will: failed, cancelled); a done run that does not compare has no comparison.
  RunNotDone: 409,
  NoComparison: 404,
  SampleSizeTooLarge: 400,
  RecursionLimit: 508,
  // The caller's to fix: ask for fewer profiles or rows.
  ResponseTooLarge: 400,
  // The deployment's, not the request's: a setting or a stored snapshot that is broken.
  InvalidConfig: 500,
  InvalidSnapshot: 500,
  WasmTrap: 500,
  InternalError: 500,
});

/** Strict UTF-8: a body that is not UTF-8 is refused, never read with U+FFFD in its place. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A request body as text, or null when it is not UTF-8. */
function utf8Text(body) {
  try {
    return UTF8.decode(body);
  } catch {
    return null;
  }
}

/** HTTP status for a lambda's typed error: 4xx for what the caller can fix, else 500. */
function statusOf(err) {
  if (typeof err.name === 'string' && Object.hasOwn(STATUS_BY_ERROR, err.name)) return STATUS_BY_ERROR[err.name];
  if (/^(Invalid|Unknown|Empty|Duplicate|TooMany|NoSuch)/.test(err.name)) return 400;
  return 500;
}

/** Lambda's pattern for a FunctionName (Invoke's API reference) and for a Qualifier. */
const FUNCTION_NAME = /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$/;
const QUALIFIER = /^[a-zA-Z0-9$_-]{1,128}$/;

/**
 * FunctionName as AWS takes it: `name`, `name:ALIAS`, a partial ARN `account:function:name[:alias]`
 * or a full ARN; the Qualifier query parameter names the alias too (`conflict`: it names another
 * alias than the name does). `invalid`: a name or Qualifier Lambda's patterns refuse (extra
 * parts, a Qualifier given twice), which Lambda answers with a ValidationException.
 * @param {unknown} raw
 * @param {unknown} qualifier
 * @returns {{name: string, qualifier: string|null, conflict: boolean, invalid: string|null}}
 */
function parseFunctionName(raw, qualifier) {
  const text = String(raw);
  if (text.length > 170 || !FUNCTION_NAME.test(text)) {
    return { name: '', qualifier: null, conflict: false, invalid: `Value '${text.slice(0, 200)}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${FUNCTION_NAME.source}` };
  }
  if (qualifier !== undefined && (typeof qualifier !== 'string' || !QUALIFIER.test(qualifier))) {
    return { name: '', qualifier: null, conflict: false, invalid: `Value '${String(qualifier).slice(0, 200)}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)` };
  }
  // `raw` is the path parameter, which the router has decoded already: decoding it again would
  // make `%25` a lone `%` and fail.
  const parts = text.split(':');
  let name;
  let alias;
  if (parts[0] === 'arn') {
    name = parts[6];
    alias = parts[7] || null;
  } else if (parts.length >= 3 && parts[1] === 'function') {
    name = parts[2];
    alias = parts[3] || null;
  } else {
    name = parts[0];
    alias = parts[1] || null;
  }
  // As Lambda: a Qualifier that names another alias than the function name's is refused.
  const conflict = Boolean(qualifier) && alias !== null && qualifier !== alias;
  return { name: name || '', qualifier: /** @type {string|undefined} */ (qualifier) || alias, conflict, invalid: null };
}

/** The lambda a function name means: `tariffsim-<target>` or `<target>`. */
function targetOf(name) {
  return lambdaOf(name);
}

function lambdaContext(name, qualifier) {
  const arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
  return { awsRequestId: crypto.randomUUID(), invokedFunctionArn: arn, functionName: name, functionVersion: '$LATEST' };
}

/**
 * The lambdas served on the server's own thread: the synchronous path. The others (a run's) run on
 * the runner thread (runner.js), so that a run's work never holds up a request.
 */
const SERVED_HERE = new Set(['price']);
/** How long the event stream of a run that does not exist waits for it (docs/server.md). */
const UNKNOWN_RUN_MS = 30_000;

/**
 * Runs a handler, keeping the last 4 KB of the log lines it writes: on this thread for `price`, on
 * the runner thread for the others.
 * @param {{get: () => {invoke: (target: string, event: unknown, context: object) => Promise<{result: unknown, tail: string}>}}} runner
 */
async function invokeWithTail(runner, target, event, context) {
  if (!SERVED_HERE.has(target)) return runner.get().invoke(target, event, context);
  const tail = { text: '' };
  try {
    const result = await withTail(tail, () => handlerOf(target)(event, context));
    return { result, tail: tail.text };
  } catch (err) {
    err.tail = tail.text;
    throw err;
  }
}

function lastBytes(text, n) {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= n ? buf : buf.subarray(buf.length - n);
}

/**
 * Reads a request body up to `limit` bytes; refuses a larger one from its Content-Length, or as
 * soon as the bytes read pass the limit, without reading it whole.
 */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(Object.assign(new Error(`request of ${declared} bytes`), { tooLarge: true, limit }));
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(Object.assign(new Error(`request over ${limit} bytes`), { tooLarge: true, limit }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function awsError(reply, status, type, message) {
  return reply
    .code(status)
    .header('x-amzn-ErrorType', type)
    .header('x-amzn-RequestId', crypto.randomUUID())
    .type('application/json')
    .send({ Type: 'User', message, Message: message });
}

/** An error as a reply may carry it: its message without absolute paths. */
function errorBody(err) {
  return { errorType: err.name || 'Error', errorMessage: scrubPaths(String(err.message)) };
}

/**
 * A run's storage as the page's API reads it: a stored JSON record that is not JSON (a damaged run
 * folder) is a typed StorageReadFailed naming its key (never a file's path), not a SyntaxError;
 * `onDamage` hears of it too (the event stream, whose watch would read it again and again).
 * @template {{get: (key: string) => Promise<Buffer|null>}} S
 * @param {S} storage
 * @param {(err: Error) => void} [onDamage]
 * @returns {S}
 */
function checkedStorage(storage, onDamage) {
  const get = async (key) => {
    const bytes = await storage.get(key);
    if (bytes !== null && key.endsWith('.json')) {
      try {
        JSON.parse(bytes.toString('utf8'));
      } catch (e) {
        const err = typed(codes.StorageReadFailed, `the stored record ${key} is damaged (not JSON: ${e.message}): the run cannot be read`);
        if (onDamage) onDamage(err);
        throw err;
      }
    }
    return bytes;
  };
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'get') return get;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Builds the server.
 * @param {{logRequests?: boolean, allowedHosts?: string[], listenHost?: string, sweep?: boolean, unknownRunMs?: number}} [options]
 *   `unknownRunMs`: how long `GET /api/runs/<id>/events` waits for a run that does not exist
 *   before it ends the stream with status `unknown` (default 30 s); `sweep`: false keeps it from taking up unfinished runs (default: it does, docs/pipeline.md);
 *   `allowedHosts`: Host names served besides loopback (each `name` or `name:port`; added to
 *   TARIFFSIM_ALLOWED_HOSTS); `listenHost`: the address it will listen on (served as a name too)
 */
function buildServer(options = {}) {
  const runner = acquireRunner();
  // Accepted Events are kept on disk until they finish, next to the runs they start
  // (event-journal.js); a server that sweeps takes up those a dead or closed server left.
  const dev = config.forEnvironment('DEV');
  const journal = new EventJournal(path.resolve(/^[a-z][a-z0-9+.-]*:\/\//i.test(dev.storage) ? dev.outDir : dev.storage));
  /** Events running on this thread (a close does not stop them). */
  let runningHere = 0;
  /** Runs a kept Event in the background (this thread for `price`, the runner for the others). */
  const runEvent = (file, { target, event, arn, delays, requestId }) => {
    const done = () => journal.done(file);
    if (!SERVED_HERE.has(target)) return runner.get().event(target, event, arn, delays, requestId, done);
    runningHere += 1;
    Promise.resolve()
      .then(() => runAsEvent(handlerOf(target), event, arn, delays, requestId))
      .catch((e) => process.stderr.write(`tariffsim: an Event for ${target} could not run: ${e && e.message}\n`))
      .finally(() => {
        runningHere -= 1;
        done();
      });
  };
  const app = Fastify({
    logger: options.logRequests ? { level: 'info' } : false,
    bodyLimit: 6 * MB,
    frameworkErrors,
    // Fastify's default (100 characters) would refuse valid run ids (up to 128) and function ARNs
    // (up to 170) with a 414; the routes check their parameters themselves.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  });
  // Host, Origin and content type, before any route (guard.js).
  app.addHook('onRequest', requestGuard({ allowedHosts: [...config.allowedHosts, ...(options.allowedHosts || [])], listenHost: options.listenHost }));
  // The paths served and their methods, for the answer to a request no route takes.
  /** @type {{pattern: RegExp, methods: Set<string>}[]} */
  const served = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${String(route.url).split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
    const known = served.find((s) => s.pattern.source === pattern.source);
    const methods = [].concat(route.method).map(String);
    if (known) methods.forEach((m) => known.methods.add(m));
    else served.push({ pattern, methods: new Set(methods) });
  });
  // No route for the request: a typed 404, or a 405 naming the methods when the path is served.
  app.setNotFoundHandler((request, reply) => {
    const pathOnly = String(request.raw.url || '').split('?')[0];
    const shown = JSON.stringify(pathOnly.slice(0, 200));
    const known = served.find((s) => s.pattern.test(pathOnly));
    if (known) {
      const allow = [...known.methods].sort().join(', ');
      return reply.code(405).header('allow', allow).type('application/json').send({ errorType: 'MethodNotAllowed', errorMessage: `${request.method} is not served at ${shown}: use ${allow}` });
    }
    if (pathOnly.startsWith('/2015-03-31/')) return awsError(reply, 404, 'UnknownOperationException', `no operation ${request.method} ${shown}`);
    return reply.code(404).type('application/json').send({ errorType: 'UnknownRoute', errorMessage: `no route ${request.method} ${shown} on this server` });
  });
  // What a route throws: a typed status, a message without absolute paths.
  app.setErrorHandler((/** @type {import('fastify').FastifyError} */ err, request, reply) => {
    const status = err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : statusOf(err);
    return reply.code(status).type('application/json').send(errorBody(err));
  });
  // Bodies are read by the routes themselves (limits depend on the invocation type).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => done(null, undefined));

  app.post('/lambdas/:name', async (/** @type {import('fastify').FastifyRequest<{Params: {name: string}, Querystring: {env?: string}}>} */ request, reply) => {
    const target = targetOf(request.params.name);
    if (!target) return reply.code(404).send({ errorType: 'ResourceNotFoundException', errorMessage: `no lambda called ${request.params.name}` });
    let body;
    try {
      body = await readBody(request.raw, LIMITS.RequestResponse);
    } catch (e) {
      if (e.tooLarge) return reply.code(413).header('connection', 'close').send({ errorType: 'RequestTooLargeException', errorMessage: `a request must be smaller than ${e.limit} bytes` });
      throw e;
    }
    const text = utf8Text(body);
    if (text === null) return reply.code(400).send({ errorType: 'InvalidJson', errorMessage: 'the input is not UTF-8 text: JSON must be UTF-8' });
    try {
      const { result } = await invokeWithTail(runner, target, text.length ? text : '{}', lambdaContext(functionName(target), request.query.env || null));
      return reply.code(200).type('application/json').send(JSON.stringify(result === undefined ? null : result));
    } catch (err) {
      return reply.code(statusOf(err)).send(errorBody(err));
    }
  });

  app.post('/2015-03-31/functions/:functionName/invocations', async (/** @type {import('fastify').FastifyRequest<{Params: {functionName: string}, Querystring: {Qualifier?: string | string[]}}>} */ request, reply) => {
    const type = /** @type {string} */ (request.headers['x-amz-invocation-type'] || 'RequestResponse');
    if (!INVOCATION_TYPES.has(type)) {
      return awsError(reply, 400, 'InvalidParameterValueException', `X-Amz-Invocation-Type ${type} is not one of RequestResponse, Event, DryRun`);
    }
    const { name, qualifier, conflict, invalid } = parseFunctionName(request.params.functionName, request.query.Qualifier);
    if (invalid !== null) return awsError(reply, 400, 'ValidationException', `1 validation error detected: ${invalid}`);
    if (conflict) return awsError(reply, 400, 'InvalidParameterValueException', 'The derived qualifier from the function name does not match the specified qualifier.');
    const target = targetOf(name);
    if (!target) {
      return awsError(reply, 404, 'ResourceNotFoundException', `Function not found: arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`);
    }
    let body;
    try {
      body = await readBody(request.raw, LIMITS[type]);
    } catch (e) {
      if (e.tooLarge) {
        reply.header('connection', 'close');
        return awsError(reply, 413, 'RequestTooLargeException', `Request must be smaller than ${e.limit} bytes for the InvokeFunction operation`);
      }
      throw e;
    }
    const text = utf8Text(body);
    if (text === null) return awsError(reply, 400, 'InvalidRequestContentException', 'Could not parse request body into json: the payload is not UTF-8 text');
    const event = text.length ? text : '{}';
    try {
      JSON.parse(event);
    } catch {
      return awsError(reply, 400, 'InvalidRequestContentException', 'Could not parse request body into json: the payload must be JSON');
    }
    const context = lambdaContext(name, qualifier);
    reply.header('x-amzn-RequestId', context.awsRequestId).header('X-Amz-Executed-Version', '$LATEST');
    if (type === 'DryRun') return reply.code(204).send();
    if (type === 'Event') {
      // Kept first (a 202 promises it runs, whatever happens to this process), then run in the
      // background and retried twice after a failure, as Lambda does.
      const entry = { target, event, arn: context.invokedFunctionArn, delays: config.forEnvironment('DEV').retryDelaysMs, requestId: context.awsRequestId };
      let file;
      try {
        file = journal.record(entry);
      } catch (e) {
        return awsError(reply, 500, 'ServiceException', scrubPaths(e.message));
      }
      runEvent(file, entry);
      return reply.code(202).send();
    }
    const wantTail = request.headers['x-amz-log-type'] === 'Tail';
    try {
      const { result, tail } = await invokeWithTail(runner, target, event, context);
      if (wantTail) reply.header('X-Amz-Log-Result', lastBytes(scrubPaths(tail), TAIL_BYTES).toString('base64'));
      return reply.code(200).type('application/json').send(JSON.stringify(result === undefined ? null : result));
    } catch (err) {
      if (wantTail) reply.header('X-Amz-Log-Result', lastBytes(scrubPaths(err.tail || ''), TAIL_BYTES).toString('base64'));
      // Frames name files relative to the repository, as the message does.
      const stackTrace = typeof err.stack === 'string' ? err.stack.split('\n').slice(1).map((l) => scrubPaths(l.trim())) : [];
      return reply
        .code(200)
        .header('X-Amz-Function-Error', 'Unhandled')
        .type('application/json')
        .send({ ...errorBody(err), stackTrace });
    }
  });

  registerPage(app, runner, options);
  // Runs left unfinished by a process that died are taken up again when the server starts, and
  // runs that stalled fail; then every TARIFFSIM_SWEEP_MS (docs/pipeline.md). On the runner.
  /** @type {NodeJS.Timeout | null} */
  let takingOver = null;
  if (options.sweep !== false) {
    app.addHook('onReady', async () => {
      await runner.get().sweep();
      const takeOver = () => {
        for (const { file, entry } of journal.takeOver()) runEvent(file, entry);
      };
      takeOver();
      // And every TARIFFSIM_SWEEP_MS, as runs are: another server on this storage may die meanwhile.
      takingOver = setInterval(takeOver, dev.sweepMs);
      takingOver.unref();
    });
  }
  app.addHook('onClose', async () => {
    if (takingOver !== null) clearInterval(takingOver);
    const stopped = await runner.release();
    // What it accepted and has not finished: for the next server when nothing here runs it any more.
    journal.close(stopped && runningHere === 0);
    await closeWorkers();
  });
  return app;
}

/**
 * The run page and the small API it uses.
 * @param {{unknownRunMs?: number}} [options] see buildServer
 */
function registerPage(app, runner, options = {}) {
  const publicDir = path.join(__dirname, 'public');
  // The UMD build, for a plain <script> tag (the package's exports map does not list it).
  const chartJs = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
  const settings = () => config.forEnvironment('DEV');
  const request = () => ({ config: settings() });

  // Run ids in the API's paths are request ids; anything else is a 400, never a 500.
  app.addHook('preHandler', async (req, reply) => {
    if (req.params && req.params.id !== undefined && !RUN_ID.test(req.params.id)) {
      return reply.code(400).send({ errorType: 'InvalidRequest', errorMessage: 'a run id is 1 to 128 letters, digits, ".", "_" or "-"' });
    }
  });
  app.get('/', async (req, reply) => reply.type('text/html').send(fs.createReadStream(path.join(publicDir, 'index.html'))));
  app.get('/app.js', async (req, reply) => reply.type('text/javascript').send(fs.createReadStream(path.join(publicDir, 'app.js'))));
  app.get('/vendor/chart.umd.js', async (req, reply) => reply.type('text/javascript').send(fs.createReadStream(chartJs)));

  app.get('/api/markets/:name', async (req, reply) => {
    if (req.params.name !== 'sample') return reply.code(404).send({ errorType: 'UnknownMarket', errorMessage: `no market ${req.params.name}` });
    const market = JSON.parse(readInput(path.join(settings().dataDir, 'sample', 'market.json'), 'market').toString('utf8'));
    return {
      name: 'sample',
      as_of: market.as_of,
      market: 'sample/market.json',
      visits: 'sample/visits.csv',
      tariffs: market.tariffs.filter((t) => t.on_sale !== false).map((t) => ({ id: t.id, supplier: t.supplier, name: t.name, kind: t.kind })),
    };
  });
  app.get('/api/markets/:name/tariffs/:id', async (req, reply) => {
    const market = JSON.parse(readInput(path.join(settings().dataDir, 'sample', 'market.json'), 'market').toString('utf8'));
    const t = req.params.name === 'sample' && market.tariffs.find((x) => x.id === req.params.id);
    if (!t) return reply.code(404).send({ errorType: 'UnknownTariff', errorMessage: `no tariff ${req.params.id}` });
    return t;
  });

  // Every route reads runs through checkedStorage: a damaged record is a typed error.
  const runStorage = () => {
    const { storage, bus } = pipelineOf(request());
    return { storage: checkedStorage(storage), bus };
  };
  app.get('/api/runs/:id', async (req) => {
    const { storage, bus } = runStorage();
    return readState(storage, req.params.id, { bus });
  });
  // Cancel, as run-simulation's `cancel` input does (the page's button): the run's state after it.
  // The body may give a `reason` (`{"reason": "wrong market"}`), recorded with the cancellation.
  app.post('/api/runs/:id/cancel', async (/** @type {import('fastify').FastifyRequest<{Params: {id: string}, Querystring: {env?: string}}>} */ req, reply) => {
    let body;
    try {
      body = await readBody(req.raw, 64 * 1024);
    } catch (e) {
      if (e.tooLarge) return reply.code(413).header('connection', 'close').send({ errorType: 'RequestTooLargeException', errorMessage: `a request must be smaller than ${e.limit} bytes` });
      throw e;
    }
    /** @type {Record<string, unknown>} */
    let given = {};
    const text = utf8Text(body);
    if (text === null) return reply.code(400).send({ errorType: 'InvalidJson', errorMessage: 'the body is not UTF-8 text: JSON must be UTF-8' });
    if (text.trim() !== '') {
      try {
        given = JSON.parse(text);
      } catch (e) {
        return reply.code(400).send({ errorType: 'InvalidJson', errorMessage: `the body is not JSON: ${e.message}` });
      }
      if (given === null || typeof given !== 'object' || Array.isArray(given) || Object.keys(given).some((k) => k !== 'reason')) {
        return reply.code(400).send({ errorType: 'InvalidRequest', errorMessage: 'the body is {} or {"reason": "..."}' });
      }
    }
    try {
      const event = given.reason === undefined ? { cancel: req.params.id } : { cancel: req.params.id, reason: given.reason };
      return (await invokeWithTail(runner, 'run-simulation', event, lambdaContext('tariffsim-run-simulation', req.query.env || null))).result;
    } catch (err) {
      return reply.code(statusOf(err)).send(errorBody(err));
    }
  });
  /**
   * The refusal of a route for a run's output `what` ("no summary") when the run is not done, from
   * its state as `GET /api/runs/:id` reports it (readState): 404 UnknownRun for an id that names no
   * run (`unknown`: nothing stored for it), else 409 RunNotDone with the run's `state` (and, for a
   * failed or cancelled run, its recorded `reason`). A run's outputs are its results only once it
   * is done: a run cancelled or failed while it was merged may have written some, which are not
   * results (`result.json` is written last).
   * @param {import('../runtime/runs').RunState} state
   * @param {string} what
   */
  const notDone = (state, what) => {
    const id = state.run_id;
    if (state.status === 'unknown') {
      return { errorType: 'UnknownRun', errorMessage: `no run ${id} in this server's storage: ${what} (check the run id, and that it was started on this server's storage)` };
    }
    const record = state.status === 'failed' ? state.failure : state.status === 'cancelled' ? state.cancellation : null;
    const reason = record && typeof record.reason === 'string' ? scrubPaths(record.reason) : null;
    return {
      errorType: 'RunNotDone',
      errorMessage: `run ${id} is ${state.status}: ${what} (a run's outputs are its results only once it is done)`,
      state: state.status,
      ...(reason === null ? {} : { reason }),
    };
  };
  /** Sends a typed refusal with its status from STATUS_BY_ERROR. */
  const refuse = (reply, body) => reply.code(STATUS_BY_ERROR[body.errorType]).type('application/json').send(body);
  /**
   * The storage of a run that is done and its state; null when it is not (the refusal sent).
   * @returns {Promise<{storage: ReturnType<typeof runStorage>['storage'], state: import('../runtime/runs').RunState} | null>}
   */
  const doneRun = async (req, reply, what) => {
    const { storage, bus } = runStorage();
    const state = await readState(storage, req.params.id, { bus });
    if (state.status === 'done') return { storage, state };
    refuse(reply, notDone(state, what));
    return null;
  };
  /** A done run's output that storage does not hold: its folder is damaged (a typed error naming the key). */
  const missing = (what, key) => typed(codes.StorageReadFailed, `the run is done but its ${what} (${key}) is missing from storage`);
  app.get('/api/runs/:id/summary', async (req, reply) => {
    const run = await doneRun(req, reply, 'no summary');
    if (run === null) return reply;
    const key = keys(req.params.id).summary;
    const summary = await run.storage.get(key);
    if (summary === null) throw missing('summary', key);
    return reply.type('application/json').send(summary);
  });
  // The paired comparison with the market before the scenario (runs that compare: their result
  // names it). A done run that does not compare: 404 NoComparison.
  for (const [route, key, type] of [['comparison', 'comparison', 'application/json'], ['comparison.csv', 'comparisonCsv', 'text/csv']]) {
    app.get(`/api/runs/:id/${route}`, async (req, reply) => {
      const run = await doneRun(req, reply, 'no comparison');
      if (run === null) return reply;
      const k = keys(req.params.id)[key];
      const bytes = await run.storage.get(k);
      if (bytes === null) {
        if (run.state.result && run.state.result.comparison_url) throw missing('comparison', k);
        return refuse(reply, { errorType: 'NoComparison', errorMessage: `run ${req.params.id} is done but has no comparison: it does not compare (no scenario, or compare: false)` });
      }
      if (type === 'text/csv') reply.header('content-disposition', `attachment; filename="${req.params.id}-comparison.csv"`);
      return reply.type(type).send(bytes);
    });
  }
  app.get('/api/runs/:id/impressions.csv', async (req, reply) => {
    const run = await doneRun(req, reply, 'no impressions');
    if (run === null) return reply;
    const { storage } = run;
    const k = keys(req.params.id);
    // A done run without its impressions: its folder is damaged (a typed error naming the key).
    const lost = () => typed(codes.StorageReadFailed, `the run is done but its impressions (${k.impressions}) are missing from storage`);
    const file = /** @type {Partial<FolderStorage>} */ (storage).file ? /** @type {FolderStorage} */ (storage).file(k.impressions) : null;
    let body;
    if (file !== null) {
      body = await fs.promises.open(file).catch((e) => {
        if (e.code === 'ENOENT') throw lost();
        throw typed(codes.StorageReadFailed, `the run's impressions (${k.impressions}) could not be read: ${e.code || e.message}`);
      });
      body = body.createReadStream();
    } else {
      body = await storage.get(k.impressions);
      if (body === null) throw lost();
    }
    reply.header('content-disposition', `attachment; filename="${req.params.id}-impressions.csv"`).type('text/csv');
    return reply.send(body);
  });
  // Server-sent events: the run's state now, then on every change, until it ends; for a run that
  // stays unknown (no spec.json) for `unknownRunMs` (default 30 s: an Event accepted but not yet
  // run), `end` with status `unknown` and the stream closes rather than poll for ever.
  const unknownMs = Number.isFinite(options.unknownRunMs) && options.unknownRunMs > 0 ? options.unknownRunMs : UNKNOWN_RUN_MS;
  /** The event streams open, each ended by a close of the server. */
  const streams = new Set();
  app.get('/api/runs/:id/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    // The headers at once: a client knows the stream is open before the run's first state.
    res.flushHeaders();
    // HEAD: the headers are the whole answer.
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const abort = new AbortController();
    /** @type {Error | null} */
    let damage = null;
    const { storage: raw, bus } = pipelineOf(request());
    // A damaged record ends the watch (it would read it, and fail, until the run's end or the
    // client's): the stream sends `failure` with the typed error.
    const storage = checkedStorage(raw, (e) => {
      damage = e;
      abort.abort();
    });
    const stream = {
      end: () => {
        abort.abort();
        res.end();
      },
    };
    streams.add(stream);
    req.raw.on('close', () => abort.abort());
    const open = () => !abort.signal.aborted && !res.writableEnded && !res.destroyed;
    watchRun({ storage, bus, runId: req.params.id, pollMs: 500, signal: abort.signal, unknownMs, onProgress: (state) => open() && send('state', state) })
      .then((final) => {
        if (damage !== null) throw damage;
        if (open()) send('end', final);
      })
      .catch((e) => !res.writableEnded && !res.destroyed && send('failure', errorBody(e)))
      .finally(() => {
        streams.delete(stream);
        res.end();
      });
  });
  // A server closing ends the streams it has open (their clients reconnect, to this server's
  // successor): Fastify's close would otherwise wait for every run followed to end.
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });
}

module.exports = { buildServer, parseFunctionName, targetOf, statusOf };
