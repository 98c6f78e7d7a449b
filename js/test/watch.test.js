'use strict';
// The watch command (js/tools/watch.js) as a user runs it: a child process on folder storage in a
// temporary folder, with the embedded bus (no REDIS_URL: the bar is fed by polling storage). How it
// ends when the run is unknown, storage cannot be read (for good, or for a moment), the id or a
// flag is bad, the watch is interrupted (under a pseudo-terminal too, where the cursor must be shown
// again), and what --cancel says about a run that had ended. (Following a run to its end over Redis: pipeline.test.js, pipeline-faults.test.js.)

const nodeTest = require('node:test');
const { after } = nodeTest;

// No test waits for ever: each has a time limit, and every child is killed by a timer of its own.
/**
 * @param {string} name
 * @param {{skip?: string | false} | ((t: import('node:test').TestContext) => Promise<void>)} options
 * @param {(t: import('node:test').TestContext) => Promise<void>} [fn]
 */
const test = (name, options, fn) => (typeof options === 'function' ? nodeTest.test(name, { timeout: 60_000 }, options) : nodeTest.test(name, { timeout: 60_000, ...options }, fn));
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const WATCH = path.join(ROOT, 'js', 'tools', 'watch.js');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-watch-'));

/** The children's environment: this storage, the embedded bus, not in Lambda. */
/** @type {Record<string, string | undefined>} */
const env = { ...process.env, TARIFFSIM_STORAGE: storageDir, TARIFFSIM_LOG_LEVEL: 'WARN' };
delete env.REDIS_URL;
delete env.AWS_LAMBDA_FUNCTION_NAME;

/** Children still running (killed by the tear-down should a test fail midway). */
const running = new Set();

/**
 * Starts a command; `done` resolves when it exits (killed with SIGKILL after `killAfterMs`: a hang
 * shows as signal SIGKILL, never as a test that waits for ever).
 * @param {string} file
 * @param {string[]} args
 * @param {{killAfterMs?: number, env?: Record<string, string | undefined>}} [options]
 */
function start(file, args, options = {}) {
  const began = Date.now();
  const child = spawn(file, args, { env: options.env || env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d.toString()));
  child.stderr.on('data', (d) => (out.stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs || 20_000);
  /** @type {Promise<{code: number | null, signal: string | null, stdout: string, stderr: string, ms: number}>} */
  const done = new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      running.delete(child);
      resolve({ code, signal, ...out, ms: Date.now() - began });
    });
  });
  return { child, out, done };
}

/** Runs the watch command with `args` to its end. */
const watch = (args, options = {}) => start(process.execPath, [WATCH, ...args], options).done;

/** Waits until `fn()` is true (every 20 ms), failing after `ms`. */
async function until(fn, what, ms = 15_000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether what a child wrote holds a stack trace or an absolute path of the repository. */
const leaks = (text) => /\n\s+at /.test(text) || text.includes(ROOT);

after(async () => {
  for (const child of running) child.kill('SIGKILL');
  await require('../runtime/pubsub').closeBuses();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

test('an unknown run ends the watch after --unknown-after with exit 5, naming the run (--cancel: at once)', async () => {
  const r = await watch(['no-such-run', '--unknown-after', '1']);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /^run no-such-run: no such run in storage \S+ after 1 s \(check the run id, --env and --storage\)$/m);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
  assert.ok(!leaks(r.stderr), r.stderr);
  // Another storage (that does not exist) is a storage without the run.
  const other = await watch(['no-such-run', '--unknown-after', '0.5', '--storage', path.join(storageDir, 'nowhere')]);
  assert.equal(other.code, 5, other.stderr);
  const cancel = await watch(['no-such-run', '--cancel']);
  assert.equal(cancel.code, 5, cancel.stderr);
  assert.match(cancel.stderr, /^run no-such-run: no such run in storage \S+: nothing to cancel/m);
  // The default bound and the status are documented.
  const help = await watch(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--unknown-after SECONDS .*default 30/);
  assert.match(help.stdout, /5 no such run/);
});

/**
 * A storage folder no read can get through, for root too: its `runs` is a file where a folder is
 * expected (ENOTDIR), checked to make a read of a run fail.
 */
async function unreadableStorage() {
  const dir = fs.mkdtempSync(path.join(storageDir, 'unreadable-'));
  fs.writeFileSync(path.join(dir, 'runs'), 'not a folder\n');
  const { openStorage } = require('../runtime/storage');
  await assert.rejects(openStorage(dir).get('runs/some-run/spec.json'), /ENOTDIR/);
  return dir;
}

test('storage that cannot be read ends the watch after --unreadable-after with exit 6, one line naming the storage and the error (--cancel: at once)', async () => {
  const dir = await unreadableStorage();
  // The run is never known (no read succeeds): --unknown-after does not apply, nor --timeout (none).
  const r = await watch(['some-run', '--storage', dir, '--unreadable-after', '1', '--unknown-after', '1']);
  assert.equal(r.code, 6, `${r.signal ? `killed by ${r.signal} ` : ''}${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^run some-run: storage \S+ could not be read for 1 s: storage read of runs\/some-run\/\S+ failed \(ENOTDIR\) \(check --storage and --env, and that the storage is reachable\)$/m);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
  assert.ok(!leaks(r.stderr), r.stderr);
  // The storage named (by its configured folder's variable: no absolute path of the machine).
  assert.match(r.stderr, new RegExp(`storage \\$TARIFFSIM_STORAGE/${path.basename(dir)} `));
  // The default bound (30 s) applies without the flag: the watch does not end at once.
  const byDefault = start(process.execPath, [WATCH, 'some-run', '--storage', dir, '--unknown-after', '1']);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(byDefault.child.exitCode, null, byDefault.out.stderr);
  byDefault.child.kill('SIGTERM');
  assert.equal((await byDefault.done).code, 143);
  // --cancel reads first: unreadable storage ends it at once, nothing cancelled.
  const cancel = await watch(['some-run', '--storage', dir, '--cancel']);
  assert.equal(cancel.code, 6, cancel.stderr);
  assert.match(cancel.stderr, /^run some-run: storage \S+ could not be read, nothing cancelled: storage read of .* failed \(ENOTDIR\)/);
  assert.equal(cancel.stderr.trim().split('\n').length, 1, cancel.stderr);
  // --timeout first still reports a timeout, with the error.
  const timedOut = await watch(['some-run', '--storage', dir, '--timeout', '1', '--unreadable-after', '30']);
  assert.equal(timedOut.code, 3, timedOut.stderr);
  assert.match(timedOut.stderr, /timed out after 1 s, storage could not be read: .*ENOTDIR/);
  // Documented.
  const help = await watch(['--help']);
  assert.match(help.stdout, /--unreadable-after SECONDS .*default 30/s);
  assert.match(help.stdout, /6 storage could not be read/);
  assert.match(help.stdout, /129\/130\/143 interrupted by SIGHUP\/SIGINT\/SIGTERM/);
});

test('a storage read that fails for a moment, then succeeds, keeps the watch going to the run\'s end', async () => {
  const dir = await unreadableStorage();
  // A bound well above the failures' 1.5 s (plus a poll, and a loaded machine's delays).
  const w = start(process.execPath, [WATCH, 'recovers-1', '--storage', dir, '--unreadable-after', '8', '--unknown-after', '0'], { killAfterMs: 40_000 });
  // Reads fail for 1.5 s (under the bound), then storage is readable, with the run in it.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(w.child.exitCode, null, w.out.stderr);
  fs.rmSync(path.join(dir, 'runs'));
  const { openStorage } = require('../runtime/storage');
  const storage = openStorage(dir);
  const { runs, bus } = runtime();
  await storage.put(runs.keys('recovers-1').spec, Buffer.from('{}'));
  await until(() => /started/.test(w.out.stderr), 'the bar, once storage is read');
  // Past the bound since the watch began: the failures were before the last good read.
  await new Promise((resolve) => setTimeout(resolve, 8000));
  assert.equal(w.child.exitCode, null, w.out.stderr);
  await runs.failRun(storage, bus, 'recovers-1', { reason: 'ended after a storage fault' });
  const r = await w.done;
  assert.equal(r.code, 1, `${r.signal ? `killed by ${r.signal} ` : ''}${r.stderr}`);
  assert.match(r.stderr, /^run recovers-1 failed: ended after a storage fault$/m);
  assert.doesNotMatch(r.stderr, /could not be read/);
});

test('an invalid run id is a usage error: exit 2, one line, no stack trace', async () => {
  for (const args of [['../etc'], ['../etc', '--cancel'], ['a/b', '--timeout', '5'], ['x'.repeat(129)]]) {
    const r = await watch(args, { killAfterMs: 10_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^watch: ".*" is not a run id/);
    assert.ok(!leaks(r.stderr), r.stderr);
  }
});

test('bad --timeout, --unknown-after and --env values are usage errors (exit 2)', async (t) => {
  const cases = [
    [['r1', '--timeout', 'abc'], /--timeout "abc"/],
    [['r1', '--timeout=-3'], /--timeout "-3"/],
    [['r1', '--timeout', '1e3'], /--timeout "1e3"/],
    [['r1', '--timeout', '99999999'], /--timeout "99999999"/],
    [['r1', '--unknown-after', 'soon'], /--unknown-after "soon"/],
    [['r1', '--unreadable-after=-1'], /--unreadable-after "-1": give seconds, 0 to \d+/],
    [['r1', '--unreadable-after', '99999999'], /--unreadable-after "99999999"/],
    [['r1', '--env', 'nope'], /--env "nope": give one of DEV, STAGING, PROD/],
  ];
  await Promise.all(
    cases.map(([args, message]) =>
      t.test(/** @type {string[]} */ (args).join(' '), { concurrency: true }, async () => {
        const r = await watch(/** @type {string[]} */ (args), { killAfterMs: 10_000 });
        assert.equal(r.code, 2, `${r.signal ? `killed by ${r.signal} ` : ''}${r.stderr}`);
        assert.match(r.stderr, /** @type {RegExp} */ (message));
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      }),
    ),
  );
  // The environment's name is not case-sensitive.
  const lower = await watch(['r1', '--env', 'staging', '--unknown-after', '0.5']);
  assert.equal(lower.code, 5, lower.stderr);
});

test('--timeout says where the run stood when last read', async () => {
  const r = await watch(['not-yet', '--timeout', '1', '--unknown-after', '0']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /^run not-yet: timed out after 1 s, last seen unknown \(no such run in storage yet\)$/m);
  assert.doesNotMatch(r.stderr, /while timeout/);
});

/** The runtime, on the children's storage, for tests that set a run up. */
function runtime() {
  const { openStorage } = require('../runtime/storage');
  return { storage: openStorage(storageDir), bus: require('../runtime/pubsub').openBus(undefined), runs: require('../runtime/runs') };
}

test('--cancel on a run that has ended says so instead of "cancel requested"', async () => {
  const { storage, bus, runs } = runtime();
  // Ended before the watch read it: failed.
  await runs.failRun(storage, bus, 'ended-1', { reason: 'broken on purpose' });
  const r = await watch(['ended-1', '--cancel']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^run ended-1: had already ended \(failed\), nothing to cancel$/m);
  assert.doesNotMatch(r.stderr, /cancel requested/);
});

test('--cancel on a run that is ending (cancelRun answers false) says so instead of "cancel requested"', async () => {
  const { storage, runs } = runtime();
  // Its merge has claimed the end as done, result.json not written yet: the cancel comes too late.
  await storage.put(runs.keys('ending-1').spec, Buffer.from('{}'));
  assert.equal(await runs.claimEnd(storage, 'ending-1', 'done'), true);
  const late = await watch(['ending-1', '--cancel', '--timeout', '1']);
  assert.match(late.stderr, /^run ending-1: too late to cancel, the run is already ending \(started so far\); following it to its end$/m);
  assert.doesNotMatch(late.stderr, /cancel requested/);
  assert.equal(late.code, 3, late.stderr);
});

test('--cancel on a run that has not ended cancels it (exit 4)', async () => {
  const { storage, runs } = runtime();
  await storage.put(runs.keys('going-1').spec, Buffer.from('{}'));
  const cancelled = await watch(['going-1', '--cancel', '--reason', 'enough', '--timeout', '10']);
  assert.match(cancelled.stderr, /^run going-1: cancel requested$/m);
  assert.match(cancelled.stderr, /^run going-1 cancelled: enough$/m);
  assert.equal(cancelled.code, 4, cancelled.stderr);
});

test('SIGHUP, SIGINT and SIGTERM end the watch with 129, 130 and 143 (the run goes on)', async () => {
  for (const [signal, code] of /** @type {const} */ ([['SIGHUP', 129], ['SIGINT', 130], ['SIGTERM', 143]])) {
    const w = start(process.execPath, [WATCH, `waited-${code}`, '--unknown-after', '600']);
    await until(() => /unknown/.test(w.out.stderr), 'the bar');
    w.child.kill(signal);
    const r = await w.done;
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, new RegExp(`^run waited-${code}: watch interrupted \\(${signal}\\); the run goes on$`, 'm'));
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
  }
});

// util-linux script(1) runs the command on a pseudo-terminal (stdout and stderr TTYs, as in a
// user's terminal, so the bar hides the cursor) and, with -e, exits with its status.
const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

test('on a terminal, SIGINT and SIGHUP show the cursor again (ESC[?25h after the bar hid it)', { skip: !hasScript && 'script(1) (util-linux) is not installed: no pseudo-terminal' }, async () => {
  const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const [signal, code] of /** @type {const} */ ([['SIGINT', 130], ['SIGHUP', 129]])) {
    // The shell prints its pid, then becomes the watch: the pid to signal.
    const command = `echo PID=$$; exec ${quote(process.execPath)} ${quote(WATCH)} on-a-tty --unknown-after 600`;
    const w = start('script', ['-qefc', command, '/dev/null'], { env: { ...env, SHELL: '/bin/sh' } });
    const all = () => w.out.stdout + w.out.stderr;
    await until(() => /PID=\d+/.test(all()) && all().includes('\x1b[?25l'), 'the bar on the terminal');
    process.kill(Number(/PID=(\d+)/.exec(all())[1]), signal);
    const r = await w.done;
    const output = r.stdout + r.stderr;
    assert.equal(r.code, code, `${signal}: ${output}`);
    const hidden = output.lastIndexOf('\x1b[?25l');
    assert.ok(output.indexOf('\x1b[?25h', hidden) > hidden, `${signal}: the cursor stays hidden: ${JSON.stringify(output.slice(hidden))}`);
    assert.match(output, new RegExp(`run on-a-tty: watch interrupted \\(${signal}\\); the run goes on`));
  }
});
