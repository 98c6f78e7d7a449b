'use strict';
// The development server's accepted Events, kept on disk until they finish. An Event is written
// here (and synced) before the server answers 202, and removed once its handler has finished (done,
// or failed after its retries, as Lambda gives up on one). A server that takes up unfinished runs
// (its sweep: docs/pipeline.md) takes up, the same way (at its start, then every
// TARIFFSIM_SWEEP_MS), the Events a server on the same storage left: one whose process is gone
// (killed, crashed) or that closed first. They run again there,
// so an accepted Event runs at least once, as Lambda delivers one. In Lambda itself the Lambda
// service keeps them; nothing here runs there.
//
//   <storage folder>/dev-server-events/<owner>/<n>.json   {target, event, arn, delays, requestId}
//   <storage folder>/dev-server-events/<owner>/closed      its server closed (a process may run
//                                                          several servers: tests do)
//
// <owner> is a holder name as the budget's (`<host>:<pid>:<boot>:<n>`, js/runtime/budget.js): the
// process that wrote it keeps it while it runs; one of this host that is gone (`deadLocal`: its pid
// no longer runs, or now runs another process, as a restarted container's) left it. Folders of
// other hosts are taken only once their server closed.

const fs = require('node:fs');
const path = require('node:path');
const { codes, typed } = require('../runtime/errors');
const { deadLocal, holderName } = require('../runtime/budget');

const FOLDER = 'dev-server-events';

/** Syncs a folder's entries (a file created or renamed in it). */
function syncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a file whole and synced, then names it: a reader never sees half of one. */
function writeSynced(file, text) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, text); // every byte, or an error
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDir(path.dirname(file));
}

class EventJournal {
  /** @param {string} folder the storage folder of the server's runs (a local folder) */
  constructor(folder) {
    this.root = path.join(folder, FOLDER);
    this.dir = path.join(this.root, holderName());
    this.next = 1;
    this.made = false;
  }

  /** Makes this journal's folder (and its parents) once, synced into their parents. */
  make() {
    if (this.made) return;
    fs.mkdirSync(this.dir, { recursive: true });
    syncDir(this.root);
    syncDir(path.dirname(this.root));
    this.made = true;
  }

  /**
   * Keeps an accepted Event; returns its file, for `done`. Throws StorageWriteFailed when it could
   * not be kept: the server then does not accept it.
   * @param {{target: string, event: string, arn: string, delays: number[], requestId: string}} entry
   */
  record(entry) {
    const file = path.join(this.dir, `${this.next++}.json`);
    try {
      this.make();
      writeSynced(file, JSON.stringify(entry));
    } catch (e) {
      // Not accepted: nothing of it may stay to be run later.
      for (const f of [`${file}.tmp`, file]) {
        try {
          fs.rmSync(f, { force: true });
        } catch {
          // never written
        }
      }
      throw typed(codes.StorageWriteFailed, `the Event could not be kept in ${FOLDER}/ (${e.code || e.message}): it was not accepted`);
    }
    return file;
  }

  /** Forgets a finished Event (one another server took up meanwhile is gone already). */
  done(file) {
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if (e.code !== 'ENOENT') process.stderr.write(`tariffsim: a finished Event's file could not be removed (${e.code}): it may run again\n`);
    }
  }

  /**
   * Takes over the Events of servers that are gone or closed: moves their files into this
   * journal (a file another server moved first is left to it) and returns them, oldest first.
   * @returns {Array<{file: string, entry: {target: string, event: string, arn: string, delays: number[], requestId: string}}>}
   */
  takeOver() {
    let owners;
    try {
      owners = fs.readdirSync(this.root);
    } catch (e) {
      if (e.code !== 'ENOENT') process.stderr.write(`tariffsim: the kept Events could not be read (${e.code}): they wait for the next start\n`);
      return [];
    }
    const taken = [];
    for (const owner of owners.sort()) {
      const from = path.join(this.root, owner);
      if (from === this.dir || !(fs.existsSync(path.join(from, 'closed')) || deadLocal(owner))) continue;
      let names;
      try {
        names = fs.readdirSync(from).filter((n) => /^\d+\.json$/.test(n));
        names.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
        if (names.length > 0) this.make();
      } catch (e) {
        process.stderr.write(`tariffsim: the Events kept in ${FOLDER}/${owner} could not be taken up (${e.code}): they wait for the next start\n`);
        continue;
      }
      let left = false;
      for (const name of names) {
        const file = path.join(this.dir, `${this.next++}.json`);
        try {
          fs.renameSync(path.join(from, name), file);
        } catch (e) {
          // Gone: another server took it. Anything else: it stays for the next start.
          if (e.code !== 'ENOENT') left = true;
          continue;
        }
        let entry;
        try {
          entry = JSON.parse(fs.readFileSync(file, 'utf8'));
        } catch (e) {
          if (e instanceof SyntaxError) {
            process.stderr.write(`tariffsim: a kept Event that is not JSON was dropped (${owner}/${name})\n`);
            this.done(file);
          } else {
            process.stderr.write(`tariffsim: a kept Event could not be read (${e.code}): it waits for the next start\n`);
          }
          continue;
        }
        taken.push({ file, entry });
      }
      if (taken.length > 0) {
        try {
          syncDir(this.dir);
        } catch {
          // the files are renamed; a crash before this sync leaves them where they were
        }
      }
      if (!left) {
        try {
          fs.rmSync(from, { recursive: true, force: true });
        } catch {
          // emptied: what is left in it is not an Event
        }
      }
    }
    return taken;
  }

  /**
   * This server closed. `stopped`: none of its Events runs any more in this process (its runner
   * stopped with it, and none runs on the server's thread): what it has not finished is then for
   * the next server on this storage. Otherwise they finish here (or wait for this process's end).
   * @param {boolean} stopped
   */
  close(stopped) {
    if (!this.made) return;
    try {
      if (!fs.readdirSync(this.dir).some((n) => n.endsWith('.json'))) fs.rmSync(this.dir, { recursive: true, force: true });
      else if (stopped) fs.writeFileSync(path.join(this.dir, 'closed'), '');
    } catch (e) {
      process.stderr.write(`tariffsim: the kept Events of a closed server could not be handed on (${e.code}): they wait for this process's end\n`);
    }
  }
}

module.exports = { EventJournal, FOLDER };
