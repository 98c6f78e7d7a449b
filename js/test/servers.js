'use strict';
// Real servers for tests, started on loopback ports and stopped by the tests: redis-server and
// moto's S3 server (PyPI moto[server]). scripts/test-js installs both when missing.

const { spawn, execFileSync } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * A free TCP port on 127.0.0.1.
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once the child has printed something matching `pattern`.
 * @param {import('node:child_process').ChildProcessWithoutNullStreams} child
 * @param {RegExp} pattern
 * @param {string} what
 * @returns {Promise<void>}
 */
function waitForOutput(child, pattern, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs} ms: ${seen}`)), timeoutMs);
    const onData = (data) => {
      seen += data.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${seen}`));
    });
  });
}

/**
 * Resolves once something listens on 127.0.0.1:`port`.
 * @param {number} port
 * @returns {Promise<void>}
 */
function waitForPort(port, timeoutMs = 20000) {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > until) reject(new Error(`nothing listens on 127.0.0.1:${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * A real redis-server on a free loopback port, without persistence (a restart loses everything:
 * the hardest case for the pipeline).
 * @returns {Promise<{url: string, port: number, stop: () => Promise<void>, kill: () => Promise<void>, start: () => Promise<void>, signal: (sig: NodeJS.Signals) => Promise<void>, restart: (downMs?: number) => Promise<void>}>}
 */
async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-redis-'));
  let child = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own: when the tests' group is orphaned (their runner started in
      // the background by a shell that has exited), the kernel sends SIGCONT to every member of
      // it each time one exits while another is stopped, which would wake a Redis a test froze
      // with signal('SIGSTOP').
      detached: true,
    });
    await waitForOutput(child, /Ready to accept connections/, 'redis-server');
  };
  const stop = async () => {
    if (child === null) return;
    const c = child;
    child = null;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGCONT'); // a stopped one (signal('SIGSTOP')) too
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /** Kills Redis (an outage: the same port stays free until `start`). */
    kill: stop,
    /** Starts it again on the same port after `kill`. */
    start,
    /**
     * Sends the process a signal (`SIGSTOP` freezes it with its connections open; `SIGCONT`); for
     * SIGSTOP, resolves once the process is stopped (signals are delivered asynchronously: a
     * command sent just after could otherwise still be served).
     */
    signal: async (/** @type {NodeJS.Signals} */ sig) => {
      if (child === null) return;
      child.kill(sig);
      if (sig !== 'SIGSTOP') return;
      const stat = `/proc/${child.pid}/stat`;
      for (let i = 0; i < 500 && fs.existsSync(stat); i += 1) {
        // The state is the field after the command's name, which is in parentheses.
        if (/\) T /.test(fs.readFileSync(stat, 'utf8'))) return;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    /** Kills Redis, keeps it down for `downMs`, starts it again on the same port. */
    restart: async (downMs = 300) => {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
  };
}

/** @returns {[string, string[]]} the command that starts moto's server, and its arguments */
function motoServerCommand() {
  for (const cmd of ['moto_server']) {
    try {
      execFileSync(cmd, ['--help'], { stdio: 'ignore' });
      return [cmd, []];
    } catch {
      // try the next
    }
  }
  return ['python3', ['-m', 'moto.server']];
}

/**
 * moto's server (S3, Lambda control plane, ...) on a free loopback port.
 * @param {{script?: string}} [options] Python source to run instead of moto.server's own entry point
 *   (it gets moto.server's arguments), for a server patched by a test
 * @returns {Promise<{endpoint: string, stop: () => Promise<void>}>}
 */
async function startMoto(options = {}) {
  const port = await freePort();
  /** @type {[string, string[]]} */
  const [cmd, args] = options.script ? ['python3', ['-c', options.script]] : motoServerCommand();
  const child = spawn(cmd, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  try {
    await waitForPort(port);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}: ${output}`, { cause: e });
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Real headless Chromium for the run page's tests: Debian's chromium (or CHROMIUM_PATH), driven
 * by playwright-core. The caller closes it.
 */
async function launchChromium() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

module.exports = { freePort, startRedis, startMoto, waitForPort, launchChromium };
