'use strict';
// The development server's kept Events (js/server/event-journal.js), on a real folder: who takes
// up whose, and what a failed write leaves (nothing).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { EventJournal, FOLDER } = require('../server/event-journal');
const { self } = require('../runtime/budget');

const HOST = self().host;

const entry = (n) => ({ target: 'run-simulation', event: JSON.stringify({ n }), arn: 'arn:aws:lambda:eu-west-2:000000000000:function:tariffsim-run-simulation', delays: [50, 100], requestId: `r-${n}` });
const jsonFiles = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).filter((n) => n.endsWith('.json')) : []);

test('a live server keeps its Events; a closed one hands them on only when nothing runs them any more', () => {
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-journal-'));
  try {
    const a = new EventJournal(storage);
    const fa = a.record(entry(1));
    a.record(entry(2));
    const b = new EventJournal(storage);
    assert.deepEqual(b.takeOver(), [], 'an open journal of this process is not taken');
    a.done(fa);
    a.close(false); // its runner still runs the other: not handed on
    assert.deepEqual(b.takeOver(), []);
    a.close(true);
    const taken = b.takeOver();
    assert.deepEqual(taken.map((t) => t.entry), [entry(2)]);
    assert.deepEqual(new EventJournal(storage).takeOver(), [], 'taken once');
    b.done(taken[0].file);
    b.close(true);
    assert.deepEqual(jsonFiles(path.join(storage, FOLDER)), []);
  } finally {
    fs.rmSync(storage, { recursive: true, force: true });
  }
});

test("a former process's Events are taken up: one that exited, or one that had this process's pid", () => {
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-journal-'));
  try {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    /** @type {Array<[string, number]>} */
    const owners = [[`${HOST}:${gone}:00000001:1`, 1], [`${HOST}:${process.pid}:00000002:1`, 2], [`${HOST}:${process.ppid}:00000003:1`, 3]];
    for (const [owner, n] of owners) {
      fs.mkdirSync(path.join(storage, FOLDER, owner), { recursive: true });
      fs.writeFileSync(path.join(storage, FOLDER, owner, '1.json'), JSON.stringify(entry(n)));
    }
    fs.writeFileSync(path.join(storage, FOLDER, `${HOST}:${gone}:00000001:1`, '2.json'), 'not json');
    const j = new EventJournal(storage);
    const taken = j.takeOver().map((t) => t.entry.requestId).sort();
    // The parent's (alive, another process) stays; the unreadable one is dropped.
    assert.deepEqual(taken, ['r-1', 'r-2']);
    assert.deepEqual(fs.readdirSync(path.join(storage, FOLDER)).filter((o) => o !== path.basename(j.dir)), [`${HOST}:${process.ppid}:00000003:1`]);
    j.close(true);
  } finally {
    fs.rmSync(storage, { recursive: true, force: true });
  }
});

test('an Event that cannot be kept leaves nothing to run later', () => {
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-journal-'));
  try {
    const j = new EventJournal(storage);
    j.record(entry(1));
    // The journal's folder replaced by a file: every write fails.
    fs.rmSync(j.dir, { recursive: true });
    fs.writeFileSync(j.dir, '');
    assert.throws(() => j.record(entry(2)), (/** @type {Error} */ e) => e.name === 'StorageWriteFailed' && /not accepted/.test(e.message));
    fs.rmSync(j.dir);
    assert.deepEqual(jsonFiles(path.join(storage, FOLDER)), []);
    j.close(true);
  } finally {
    fs.rmSync(storage, { recursive: true, force: true });
  }
});
