#!/usr/bin/env node
'use strict';
// npm start: the development server on the embedded defaults (sample data, in-process pub/sub,
// local folder storage). Options: --host (default 127.0.0.1, or $TARIFFSIM_HOST; never the shell's
// $HOST, which tcsh sets to the machine's name: the server would listen beyond loopback), --port (default 3000, or
// $PORT; 0 picks a free port), --allowed-host NAME[:PORT] (repeatable; a Host name to serve besides
// 127.0.0.1, localhost and [::1], e.g. the machine's name on the LAN; TARIFFSIM_ALLOWED_HOSTS takes
// a comma-separated list too). Set REDIS_URL for a real Redis, TARIFFSIM_STORAGE=s3://... for S3.

const { parseArgs } = require('node:util');
const { buildServer } = require('./server');

const USAGE = 'usage: npm start -- [--host 127.0.0.1] [--port 3000] [--allowed-host NAME[:PORT] ...]';

async function main() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: process.env.TARIFFSIM_HOST || '127.0.0.1' },
      port: { type: 'string', default: process.env.PORT || '3000' },
      'allowed-host': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: give a port number`);
  const app = buildServer({ allowedHosts: values['allowed-host'], listenHost: values.host });
  const address = await app.listen({ host: values.host, port });
  process.stderr.write(`tariffsim dev server on ${address}\n  page:        ${address}/\n  REST:        POST ${address}/lambdas/<name>\n  Lambda API:  POST ${address}/2015-03-31/functions/<name>/invocations (endpoint ${address})\n`);
  const stop = async () => {
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  process.stderr.write(`tariffsim: ${e.message}\n`);
  process.exit(1);
});
