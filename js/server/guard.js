'use strict';
// What the development server accepts, checked before any route runs, so that a server left
// running is safe from the web pages its user visits:
//
// - Host: only the names it serves: 127.0.0.1, localhost and [::1] with the port it listens on,
//   the address it was started on (--host, unless 0.0.0.0 or ::), and the names configured with
//   --allowed-host or TARIFFSIM_ALLOWED_HOSTS (`name` for any port, `name:port`). Anything else is
//   403 HostNotAllowed: a page whose domain was rebound to 127.0.0.1 (DNS rebinding) gets nothing.
// - Origin: a request carrying an Origin header other than the server's own (`http://<Host>`),
//   `null` included, is 403 CrossOriginRequest; so is one whose Sec-Fetch-Site is `cross-site` or
//   `same-site`, except a GET or HEAD that navigates to a page (a link to the run page works).
// - Content type: a state-changing request (any method but GET, HEAD and OPTIONS) needs
//   `application/json`; the Lambda Invoke API also takes what the AWS SDKs send for its binary
//   payload: `application/octet-stream` (JS SDK v3, Ruby), `binary/octet-stream`, or none (boto3,
//   older Ruby SDKs send an empty one). Anything else, the types an HTML form or a no-cors fetch
//   can send without the browser asking first (text/plain, application/x-www-form-urlencoded,
//   multipart/form-data) among them, is 415 (a request for a path or method no route serves is
//   answered 404 UnknownRoute or 405 MethodNotAllowed instead: there is nothing to send it to).
//
// Refusals are typed: {errorType, errorMessage} on the REST routes and the page's API, and as AWS
// errors (x-amzn-ErrorType) on the Invoke API.

const crypto = require('node:crypto');
const { codes } = require('../runtime/errors');

const INVOKE_PREFIX = '/2015-03-31/functions/';
const LOOPBACK = Object.freeze(['127.0.0.1', 'localhost', '[::1]']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const INVOKE_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'binary/octet-stream']);
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/;

/**
 * A Host header or allowed-host entry as {name, port}; port null when not given, undefined for a
 * Host that is not a host name.
 */
function parseHost(value) {
  const m = typeof value === 'string' ? HOST.exec(value.trim().toLowerCase()) : null;
  if (!m) return undefined;
  return { name: m[1], port: m[2] === undefined ? null : Number(m[2]) };
}

/** The bare address of a --host value as a Host name: IPv6 in brackets. */
function hostName(address) {
  if (typeof address !== 'string' || address === '') return null;
  const a = address.toLowerCase();
  if (a === '0.0.0.0' || a === '::' || a === '[::]') return null;
  return a.includes(':') && !a.startsWith('[') ? `[${a}]` : a;
}

/**
 * The checks as a Fastify onRequest hook.
 * @param {{allowedHosts?: string[], listenHost?: string}} [options] names served besides loopback
 *   (each `name` or `name:port`), and the address the server listens on
 */
function requestGuard(options = {}) {
  const allowed = [];
  for (const entry of options.allowedHosts || []) {
    const parsed = parseHost(entry);
    if (parsed === undefined) throw new Error(`allowed host ${JSON.stringify(entry)}: give a host name, optionally with :port`);
    allowed.push(parsed);
  }
  const bound = hostName(options.listenHost);

  /** Whether `host` ({name, port}) is served, for a server listening on `localPort`. */
  function served(host, localPort) {
    const port = host.port === null ? 80 : host.port;
    const samePort = localPort === undefined || port === localPort;
    if ((LOOPBACK.includes(host.name) || host.name === bound) && samePort) return true;
    return allowed.some((a) => a.name === host.name && (a.port === null || a.port === port));
  }

  return async function guard(request, reply) {
    const invoke = request.url.startsWith(INVOKE_PREFIX);
    const refuse = (status, type, awsType, message) => {
      reply.header('connection', 'close');
      if (invoke) {
        return reply
          .code(status)
          .header('x-amzn-ErrorType', awsType)
          .header('x-amzn-RequestId', crypto.randomUUID())
          .type('application/json')
          .send({ Type: 'User', message, Message: message });
      }
      return reply.code(status).type('application/json').send({ errorType: type, errorMessage: message });
    };
    const headers = request.headers;
    const localPort = request.raw.socket ? request.raw.socket.localPort : undefined;

    const host = parseHost(headers.host);
    if (host === undefined || !served(host, localPort)) {
      const shown = typeof headers.host === 'string' ? JSON.stringify(headers.host.slice(0, 100)) : 'none';
      return refuse(403, codes.HostNotAllowed, codes.HostNotAllowed, `Host ${shown} is not a name this server serves (127.0.0.1, localhost or [::1] with its port): start it with --allowed-host NAME or set TARIFFSIM_ALLOWED_HOSTS to serve another`);
    }

    const origin = headers.origin;
    if (origin !== undefined) {
      let own;
      try {
        const u = new URL(origin);
        const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
        own = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname === host.name && port === (host.port === null ? 80 : host.port);
      } catch {
        own = false;
      }
      if (!own) {
        return refuse(403, codes.CrossOriginRequest, codes.CrossOriginRequest, `a request from the web page at ${JSON.stringify(String(origin).slice(0, 100))} is refused: only this server's own pages may call it`);
      }
    }
    const site = headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') {
      const navigation = (request.method === 'GET' || request.method === 'HEAD') && headers['sec-fetch-mode'] === 'navigate';
      if (!navigation) return refuse(403, codes.CrossOriginRequest, codes.CrossOriginRequest, `a ${site} request from a web page is refused: only this server's own pages may call it`);
    }

    // A request no route takes has no body to read: the not-found handler answers it (a typed
    // 404, or 405 for a served path), not a content-type refusal.
    if (!SAFE_METHODS.has(request.method) && request.is404 !== true) {
      const type = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      if (invoke ? !INVOKE_TYPES.has(type) : type !== 'application/json') {
        const expected = invoke ? 'application/json, application/octet-stream, binary/octet-stream or none' : 'application/json';
        return refuse(415, codes.UnsupportedMediaType, 'UnsupportedMediaTypeException', `content type ${type === '' ? 'none' : JSON.stringify(type.slice(0, 100))} is refused: send the JSON payload as ${expected}`);
      }
      // An empty Content-Type (older Ruby SDKs) is no type at all: Fastify would refuse it.
      if (headers['content-type'] !== undefined && String(headers['content-type']).trim() === '') delete request.raw.headers['content-type'];
    }
    return undefined;
  };
}

/**
 * Fastify's own refusals (a malformed URL escape, a bad header) as typed errors, in the shape of
 * the route's other errors.
 */
function frameworkErrors(error, request, reply) {
  const status = error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const message = `the request is malformed: ${String(error.message).slice(0, 200)}`;
  if (String(request.url).startsWith(INVOKE_PREFIX)) {
    return reply.code(status).header('x-amzn-ErrorType', 'InvalidRequestContentException').header('x-amzn-RequestId', crypto.randomUUID()).type('application/json').send({ Type: 'User', message, Message: message });
  }
  return reply.code(status).type('application/json').send({ errorType: codes.InvalidRequest, errorMessage: message });
}

module.exports = { requestGuard, frameworkErrors, parseHost, LOOPBACK };
