'use strict';
// The development server's accepted Events, kept on disk until they finish. An Event is written
// here (and synced) before the server answers 202, and removed once its handler has finished (done,
// or failed after its retries, as Lambda gives up on one). A server that takes up unfinished runs
// (its sweep: docs/pipeline.md) takes up, the same way, the Events a server on the same storage
// left: one whose process is gone (killed, crashed) or that closed first. They run again there,
// so an accepted Event runs at least once, as Lambda delivers one. In Lambda itself the Lambda
// service keeps them; nothing here runs there.
//
//   <storage folder>/dev-server-events/<owner>/<n>.json   {target, event, arn, delays, requestId}
//   <storage folder>/dev-server-events/<owner>/closed      its server closed (a process may run
//                                                          several servers: tests do)
//
// <owner> is p<pid>-<ms>-<random>: the process that wrote it, while it runs, keeps it.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { codes, typed } = require('../runtime/errors');

const FOLDER = 'dev-server-events';
const OWNER = /^p(\d+)-\d+-[0-9a-f]+$/;

/** Whether process `pid` is running (one of another user counts: it may not be signalled). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Writes a file whole and synced, then names it: a reader never sees half of one. */
function writeSynced(file, text) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

class EventJournal {
  /** @param {string} folder the storage folder of the server's runs (a local folder) */
  constructor(folder) {
    this.root = path.join(folder, FOLDER);
    this.dir = path.join(this.root, `p${process.pid}-${Date.now()}-${crypto.randomBytes(4).toString('hex')}`);
    this.next = 1;
  }

  /**
   * Keeps an accepted Event; returns its file, for `done`. Throws StorageWriteFailed when it could
   * not be kept: the server then does not accept it.
   * @param {{target: string, event: string, arn: string, delays: number[], requestId: string}} entry
   */
  record(entry) {
    const file = path.join(this.dir, `${this.next++}.json`);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      writeSynced(file, JSON.stringify(entry));
    } catch (e) {
      try {
        fs.rmSync(`${file}.tmp`, { force: true });
      } catch {
        // nothing was written
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
    } catch {
      return [];
    }
    const taken = [];
    for (const owner of owners.sort()) {
      const from = path.join(this.root, owner);
      const m = OWNER.exec(owner);
      if (from === this.dir || m === null) continue;
      if (!fs.existsSync(path.join(from, 'closed')) && alive(Number(m[1]))) continue;
      let names;
      try {
        names = fs.readdirSync(from).filter((n) => /^\d+\.json$/.test(n));
      } catch {
        continue;
      }
      names.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
      for (const name of names) {
        let text;
        try {
          text = fs.readFileSync(path.join(from, name), 'utf8');
          fs.mkdirSync(this.dir, { recursive: true });
        } catch {
          continue;
        }
        const file = path.join(this.dir, `${this.next++}.json`);
        try {
          fs.renameSync(path.join(from, name), file);
        } catch {
          continue; // another server took it
        }
        let entry;
        try {
          entry = JSON.parse(text);
        } catch {
          process.stderr.write(`tariffsim: an unreadable Event file was dropped (${owner}/${name})\n`);
          this.done(file);
          continue;
        }
        taken.push({ file, entry });
      }
      fs.rmSync(from, { recursive: true, force: true });
    }
    return taken;
  }

  /** This server closed: what it has not finished is for the next server on this storage. */
  close() {
    try {
      if (fs.readdirSync(this.dir).some((n) => n.endsWith('.json'))) fs.writeFileSync(path.join(this.dir, 'closed'), '');
      else fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // never written to
    }
  }
}

module.exports = { EventJournal, FOLDER };
