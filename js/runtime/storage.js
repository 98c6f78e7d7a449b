'use strict';
// Storage of runs: populations, chunk outputs, run state and results. Two backends with one
// interface: a local folder (the default) and S3 (`s3://bucket/prefix`, AWS SDK for JavaScript v3,
// loaded only when an S3 location is used).
//
//   get(key)               -> Buffer, or null when absent
//   put(key, bytes)        whole object (a reader never sees half of it)
//   putIfAbsent(key, bytes)-> true when this call created it, false when it existed (atomic: O_EXCL
//                             on a folder, `If-None-Match: *` on S3): the claim that makes a
//                             duplicate delivery or a second merge a no-op
//   takeOver(key, stale, bytes) -> true when this call replaced the object holding exactly `stale`
//                          (a claim or lock judged stale) with `bytes`; false when it holds
//                          something else, is gone, or another take-over of it won. Of concurrent
//                          take-overs of one object exactly one wins (If-Match on the ETag on S3;
//                          on a folder, an O_EXCL take-over token per stale record, then the
//                          record renamed away and checked: see FolderStorage.takeOver)
//   delete(key)            removes it (no error when absent)
//   deleteAll(keys)        removes them all (no error for those absent): on S3 a DeleteObjects per
//                          1,000 keys, on a folder each file, then the folders that emptied (a
//                          failed or cancelled run's chunk objects: js/runtime/scheduler.js)
//   list(prefix)           -> keys under prefix, sorted
//   putStream(key, chunks) an object from an async iterable of Buffers, whole or not at all: the
//                          merged impressions (a file renamed into place on a folder, a multipart
//                          upload on S3)
//   removeDeadTemporaries(folder) removes what put writers that are gone (killed mid-write) left
//                          in a folder (a folder only; nothing on S3)
//   removeStaleTemporaries(key) removes what putStream(key) writers that are gone (killed
//                          mid-stream) left on a folder; nothing on S3 (an abandoned multipart
//                          upload is not an object: a lifecycle rule aborts it)
//   abandonStreams(key)    for a key nobody will stream again (a run that ended failed or
//                          cancelled, its merge's lock stale or gone): on S3 the unfinished
//                          multipart uploads of it aborted; on a folder removeStaleTemporaries(key)
//   putSync?(key, bytes)   folder only: put in the calling thread (a chunk worker's own chunk)
//   readInto?(key, into)   folder only: get into a reused buffer (the merge)
//   url(key)               where the object is, for people and logs
//
// A run is assembled the same way on both: each chunk's impressions stored as an object of their
// own, concatenated once by the merge (js/runtime/chunk-pipeline.js). The backend changes where the
// bytes go, never how a run is put together.
//
// On a folder every write is checked: written whole (a short write is continued, a write that
// makes no progress fails) and closed, and any failure of these, of creating the folder or of the
// rename that puts the object in place, is a StorageWriteFailed error naming the key (relative to
// the storage, never an absolute path); a half-written temporary file is removed. What a run
// delivers and what ends it (impressions.csv, summary.json, comparison.json/.csv, result.json,
// failed.json, cancelled.json) are also flushed to the disk (fsync) before they are put in place; a run's
// working objects (claims, locks, chunk objects, done markers, usage, progress, budget slots) are
// not: they need only outlive the process that wrote them, which the page cache does, and a
// flush of each cost more than the chunks' own work (npm run bench:pipeline, docs/pipeline.md).
// Reads that fail for another reason than absence are StorageReadFailed.

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const crypto = require('node:crypto');
const path = require('node:path');
const { codes, typed } = require('./errors');
const { holderName, deadLocal } = require('./budget');

/** A take-over token older than this was left by a taker that died mid-take-over (it takes ms). */
const TAKEOVER_TOKEN_MS = 10_000;

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

function checkKey(key) {
  if (typeof key !== 'string' || !KEY.test(key) || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw typed(codes.InvalidReference, `storage key ${JSON.stringify(key)} is not a relative path of letters, digits, '.', '_', '-' and '/'`);
  }
  return key;
}

/** A failed write of `key` as a typed error: the key and the system's code, no absolute path. */
function writeFailed(e, key, op = 'write') {
  // Only the system's errors are translated: a typed error (from the source of a stream, say) is
  // passed on as it is.
  if (!e || typeof e.code !== 'string') return e;
  const { code } = e;
  const what = { ENOSPC: ': the disk is full', EFBIG: ': the file is larger than allowed', EDQUOT: ': the disk quota is used up', EACCES: ': permission denied', EROFS: ': the file system is read-only' }[code] || '';
  return typed(codes.StorageWriteFailed, `storage ${op} of ${key} failed (${code}${what})`, { cause: e });
}

function readFailed(e, key) {
  if (!e || typeof e.code !== 'string') return e;
  return typed(codes.StorageReadFailed, `storage read of ${key} failed (${e.code})`, { cause: e });
}

/**
 * Whether the writer a temporary file's name gives is gone: `<host>:<pid>:<boot>:<n>` (putStream)
 * when it was a process (or thread) of this host that is gone; a bare `<pid>` (putStream's names
 * before they named the writer) when that process is not running, or is this process (which never
 * wrote such a name: an earlier process had its pid).
 */
function writerGone(writer) {
  if (writer.includes(':')) return deadLocal(writer);
  if (!/^\d+$/.test(writer)) return false;
  const pid = Number(writer);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e.code === 'ESRCH';
  }
}

/** Writes all of `bytes` at `position` (null: the file's current offset), continuing short writes. */
async function writeAll(handle, bytes, position) {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position === null ? null : position + done);
    if (!(bytesWritten > 0)) throw Object.assign(new Error('a write made no progress'), { code: 'EIO' });
    done += bytesWritten;
  }
}

/** A durable stream is flushed every this many bytes as it is written (FolderStorage.putStream). */
const FLUSH_EVERY = 32 * 1024 * 1024;
/** Flushes of growing streams going on in this process. */
let backgroundFlushes = 0;

/** Keys flushed to the disk when written: what a run delivers and what ends it. */
const DURABLE = /(^|\/)(impressions\.csv|summary\.json|comparison\.json|comparison\.csv|result\.json|failed\.json|cancelled\.json)$/;
const durable = (key) => DURABLE.test(key);

/**
 * Runs `write(handle)` on an open file, then (when `sync`) flushes it to the disk, and closes it;
 * the first failure is thrown (a failing close is never lost).
 */
async function withFile(file, flags, write, sync = true) {
  const handle = await fsp.open(file, flags);
  let failure = null;
  try {
    await write(handle);
    if (sync) await handle.sync();
  } catch (e) {
    failure = e;
  }
  try {
    await handle.close();
  } catch (e) {
    if (failure === null) failure = e;
  }
  if (failure !== null) throw failure;
}

/** A new file holding exactly `bytes`, closed (and flushed when `sync`). */
function writeNew(file, bytes, sync) {
  return withFile(file, 'w', (handle) => writeAll(handle, bytes, null), sync);
}

/**
 * The folder on the way to `dir` that is missing and whose parent exists, or null (all there).
 * @param {string} dir
 * @param {(d: string) => boolean} exists
 */
function firstMissing(dir, exists) {
  let missing = null;
  for (let d = dir; !exists(d); d = path.dirname(d)) {
    missing = d;
    if (path.dirname(d) === d) return null;
  }
  return missing;
}

/**
 * Creates a folder and those on its way. Node's recursive mkdir reports ENOENT when a folder on
 * the way cannot be created for another reason (a read-only file system, no permission): the
 * first missing folder is then created alone, whose error says why (EROFS, EACCES), so that a
 * refusal for good is seen as one (js/runtime/chunk-pipeline.js) and not as a folder gone.
 */
async function makeFolder(dir) {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    const missing = firstMissing(dir, (d) => fs.existsSync(d));
    if (missing !== null) {
      try {
        await fsp.mkdir(missing);
      } catch (e2) {
        if (e2.code !== 'EEXIST') throw e2;
      }
    }
    await fsp.mkdir(dir, { recursive: true });
  }
}

/** makeFolder in the calling thread (putSync). */
function makeFolderSync(dir) {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    const missing = firstMissing(dir, (d) => fs.existsSync(d));
    if (missing !== null) {
      try {
        fs.mkdirSync(missing);
      } catch (e2) {
        if (e2.code !== 'EEXIST') throw e2;
      }
    }
    fs.mkdirSync(dir, { recursive: true });
  }
}

/** A put's temporary file, `<name>.<pid>.<random>.tmp` (FolderStorage.writeTemporary, putSync): its writer's pid. */
const PUT_TEMPORARY = /\.(\d{1,10})\.[a-z0-9]{1,16}\.tmp$/;

/**
 * Removes the files of a folder that `gone(name)` says a writer that is gone left; returns how
 * many. A folder that cannot be read has none.
 * @param {string} dir
 * @param {(name: string) => boolean} gone
 */
async function removeIn(dir, gone) {
  let names;
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!gone(name)) continue;
    await fsp.rm(path.join(dir, name), { force: true });
    removed += 1;
  }
  return removed;
}

class FolderStorage {
  constructor(root) {
    this.root = path.resolve(root);
    this.dirs = new Set();
  }

  /**
   * Runs a write into a file's folder, creating the folder once per process rather than before
   * every write (and again if it went away meanwhile).
   */
  async inFolder(file, write) {
    const dir = path.dirname(file);
    if (!this.dirs.has(dir)) {
      await makeFolder(dir);
      if (this.dirs.size > 10_000) this.dirs.clear();
      this.dirs.add(dir);
    }
    try {
      return await write();
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      await makeFolder(dir);
      return write();
    }
  }

  file(key) {
    return path.join(this.root, checkKey(key));
  }

  url(key) {
    return this.file(key);
  }

  async get(key) {
    const file = this.file(key);
    try {
      return await fsp.readFile(file);
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw readFailed(e, key);
    }
  }

  /**
   * Reads an object into `into.buffer` (replaced by a larger one when too small) and returns a
   * view of the bytes read, valid until the next read into the same `into`; null when absent. For
   * a stream that reuses its buffers (the merge allocates nothing per chunk).
   * @param {string} key
   * @param {{buffer?: Buffer}} into
   * @returns {Promise<Buffer|null>}
   */
  async readInto(key, into) {
    const file = this.file(key);
    let handle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw readFailed(e, key);
    }
    try {
      const { size } = await handle.stat();
      if (!into.buffer || into.buffer.length < size) into.buffer = Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
      let n = 0;
      while (n < size) {
        const { bytesRead } = await handle.read(into.buffer, n, size - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return into.buffer.subarray(0, n);
    } catch (e) {
      throw readFailed(e, key);
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** A temporary file next to `key`'s, written whole and closed, flushed when durable (removed if that fails). */
  async writeTemporary(key, file, bytes) {
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await this.inFolder(file, () => writeNew(tmp, bytes, durable(key)));
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw writeFailed(e, key);
    }
    return tmp;
  }

  async put(key, bytes) {
    const file = this.file(key);
    const tmp = await this.writeTemporary(key, file, bytes);
    try {
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw writeFailed(e, key);
    }
  }

  /**
   * put, done in the calling thread (a worker thread of the chunk pool storing the chunk it has
   * just computed: blocking it costs nothing, and the bytes are written while they are fresh in
   * its cache; an asynchronous write would advance only between its computations). The same
   * checks: written whole, closed, renamed into place, failures as StorageWriteFailed.
   */
  putSync(key, bytes) {
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const dir = path.dirname(file);
    try {
      if (!this.dirs.has(dir)) {
        makeFolderSync(dir);
        this.dirs.add(dir);
      }
      let fd;
      try {
        fd = fs.openSync(tmp, 'w');
      } catch (e) {
        // The folder went away meanwhile (emptied and removed: deleteAll): made again.
        if (e.code !== 'ENOENT') throw e;
        makeFolderSync(dir);
        fd = fs.openSync(tmp, 'w');
      }
      let failure = null;
      try {
        for (let done = 0; done < bytes.length; ) {
          const n = fs.writeSync(fd, bytes, done, bytes.length - done);
          if (!(n > 0)) throw Object.assign(new Error('a write made no progress'), { code: 'EIO' });
          done += n;
        }
        if (durable(key)) fs.fsyncSync(fd);
      } catch (e) {
        failure = e;
      }
      try {
        fs.closeSync(fd);
      } catch (e) {
        if (failure === null) failure = e;
      }
      if (failure !== null) throw failure;
      fs.renameSync(tmp, file);
    } catch (e) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // not there
      }
      throw writeFailed(e, key);
    }
  }

  async putIfAbsent(key, bytes) {
    const file = this.file(key);
    // Write a temporary file, then link it into place: link(2) fails when the name exists, so
    // exactly one caller wins and nobody sees a half-written object.
    const tmp = await this.writeTemporary(key, file, bytes);
    try {
      await fsp.link(tmp, file);
      return true;
    } catch (e) {
      if (e.code === 'EEXIST') return false;
      throw writeFailed(e, key);
    } finally {
      await fsp.unlink(tmp).catch(() => {});
    }
  }

  /**
   * Replaces `key`'s object with `bytes` if it holds exactly `stale`; of concurrent take-overs of
   * one record exactly one wins. (Deleting the stale record and then putIfAbsent is not enough: a
   * second taker that read the same stale record deletes the first one's fresh claim.)
   *
   * 1. A token per stale record, `<file>.<sha256 of stale>.takeover.tmp`, created with O_EXCL:
   *    only one taker of that record goes on. A token left by a taker that died (a process of this
   *    host that is gone, or older than 10 s: a take-over takes milliseconds) is renamed away by
   *    one taker, which tries once more.
   * 2. The record is read: not `stale` any more (taken over, renewed, released): give up. Else it
   *    is renamed to a name of this taker's own (atomic: one rename moves it) and checked again:
   *    if it is not `stale` (its holder renewed it in between), it is linked back.
   * 3. The new record is put with putIfAbsent (a plain claimer that found the name free in
   *    between wins instead: still one winner).
   * The token is removed at the end: a late taker of the same stale record finds another record
   * there (step 2) and gives up before renaming anything.
   * @param {string} key
   * @param {Buffer} stale
   * @param {Buffer} bytes
   * @returns {Promise<boolean>}
   */
  async takeOver(key, stale, bytes, retry = true) {
    const file = this.file(key);
    const token = `${file}.${crypto.createHash('sha256').update(stale).digest('hex').slice(0, 32)}.takeover.tmp`;
    const me = Buffer.from(JSON.stringify({ holder: holderName(), at: new Date().toISOString() }));
    try {
      await this.inFolder(file, () => withFile(token, 'wx', (handle) => writeAll(handle, me, null), false));
    } catch (e) {
      if (e.code !== 'EEXIST') throw writeFailed(e, key);
      if (!retry || !(await this.tokenAbandoned(token))) return false;
      const away = `${token}.${holderName()}.gone.tmp`;
      try {
        await fsp.rename(token, away);
      } catch {
        return false;
      }
      // Renamed a token that was not the abandoned one (its taker finished and another began)?
      // Put it back and give up; else try once more.
      if (!(await this.tokenAbandoned(away))) {
        await fsp.link(away, token).catch(() => {});
        await fsp.unlink(away).catch(() => {});
        return false;
      }
      await fsp.unlink(away).catch(() => {});
      return this.takeOver(key, stale, bytes, false);
    }
    try {
      const now = await this.get(key);
      if (now === null || !now.equals(stale)) return false;
      const moved = `${file}.${holderName()}.taken.tmp`;
      try {
        await fsp.rename(file, moved);
      } catch (e) {
        if (e.code === 'ENOENT') return false;
        throw writeFailed(e, key);
      }
      const got = await fsp.readFile(moved).catch(() => null);
      if (got === null || !got.equals(stale)) {
        // Its holder renewed it between the read and the rename: put back (the one window left).
        await fsp.link(moved, file).catch(() => {});
        await fsp.unlink(moved).catch(() => {});
        return false;
      }
      await fsp.unlink(moved).catch(() => {});
      return await this.putIfAbsent(key, bytes);
    } finally {
      await fsp.unlink(token).catch(() => {});
    }
  }

  /** Whether a take-over token's taker is gone (a process of this host) or took too long. */
  async tokenAbandoned(token) {
    let record;
    try {
      record = JSON.parse((await fsp.readFile(token)).toString());
    } catch (e) {
      // Gone meanwhile: not abandoned (its taker finished). Unreadable: abandoned mid-write.
      return e.code !== 'ENOENT';
    }
    const at = Date.parse(record && record.at);
    return (record && typeof record.holder === 'string' && deadLocal(record.holder)) || !Number.isFinite(at) || Date.now() - at > TAKEOVER_TOKEN_MS;
  }

  async delete(key) {
    const file = this.file(key);
    try {
      await fsp.rm(file, { force: true });
    } catch (e) {
      throw writeFailed(e, key, 'delete');
    }
  }

  /**
   * Deletes the objects (those absent: nothing), then the folders of theirs that are left empty
   * (up to the storage's root; a folder something was written to meanwhile stays).
   * @param {string[]} keys
   */
  async deleteAll(keys) {
    const dirs = new Set();
    for (const key of keys) {
      await this.delete(key);
      dirs.add(path.dirname(this.file(key)));
    }
    // Deepest first: a folder empties once the folders in it are gone.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      for (let d = dir; d.startsWith(`${this.root}${path.sep}`); d = path.dirname(d)) {
        try {
          await fsp.rmdir(d);
        } catch {
          // not empty (or gone): kept
          break;
        }
        // Written into again later: made again (inFolder, putSync).
        this.dirs.delete(d);
      }
    }
  }

  /** A folder has no streams of its own to abort: the temporaries of writers that are gone are removed. */
  async abandonStreams(key) {
    return this.removeStaleTemporaries(key);
  }

  async list(prefix) {
    const dir = this.file(prefix.replace(/\/$/, ''));
    const out = [];
    const walk = async (d, rel) => {
      let entries;
      try {
        entries = await fsp.readdir(d, { withFileTypes: true });
      } catch (e) {
        if (e.code === 'ENOENT') return;
        throw readFailed(e, prefix);
      }
      for (const e of entries) {
        if (e.name.endsWith('.tmp')) continue;
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(path.join(d, e.name), r);
        else out.push(`${prefix.replace(/\/$/, '')}/${r}`);
      }
    };
    await walk(dir, '');
    return out.sort();
  }

  /**
   * Removes the temporary files of putStream(key) whose writer is gone: a process of this host
   * that is no longer running (or an earlier life of this process's pid), named in the file's name.
   * A writer that is alive, or of another host, keeps its file. Called when a merge (re)starts and
   * when a run ends (js/runtime/chunk-pipeline.js, runs.js).
   * @param {string} key
   * @returns {Promise<number>} how many were removed
   */
  async removeStaleTemporaries(key) {
    const file = this.file(key);
    const prefix = `${path.basename(file)}.`;
    return removeIn(path.dirname(file), (name) => name.startsWith(prefix) && name.endsWith('.tmp') && writerGone(name.slice(prefix.length, -'.tmp'.length)));
  }

  /**
   * Removes the temporary files that put (or putIfAbsent, putSync) writers that are gone left in
   * a folder (`<name>.<pid>.<random>.tmp`: a process killed mid-write): those of a pid of another
   * process that is not running on this host. This process's own, and a running process's, stay
   * (a live writer's file is never removed). Called when a run ends (js/runtime/runs.js).
   * @param {string} prefix a folder
   * @returns {Promise<number>} how many were removed
   */
  async removeDeadTemporaries(prefix) {
    return removeIn(this.file(prefix.replace(/\/$/, '')), (name) => {
      const m = PUT_TEMPORARY.exec(name);
      return m !== null && Number(m[1]) !== process.pid && writerGone(m[1]);
    });
  }

  async putStream(key, chunks) {
    const file = this.file(key);
    // Named by its writer (host, pid, thread's boot, n: js/runtime/budget.js), so that the file of
    // a writer that is gone (a server killed mid-merge) is known and removed (removeStaleTemporaries).
    const tmp = `${file}.${holderName()}.tmp`;
    const sync = durable(key);
    try {
      await this.inFolder(file, () =>
        withFile(
          tmp,
          'w',
          async (handle) => {
            // A durable object is flushed as it grows (one flush at a time, in the background,
            // every FLUSH_EVERY bytes), so the flush before the rename has only the tail left: a
            // stream that follows a run's chunks (js/runtime/chunk-pipeline.js) ends soon after
            // its last chunk rather than a flush of the whole file later.
            // At most one such flush at a time in the process (a flush holds one of libuv's four
            // threads for as long as the disk takes: five at once would stall every other file
            // operation); a stream that finds one going on flushes later.
            let unflushed = 0;
            let flushing = null;
            for await (const chunk of chunks) {
              await writeAll(handle, chunk, null);
              unflushed += chunk.length;
              if (sync && unflushed >= FLUSH_EVERY && backgroundFlushes === 0) {
                if (flushing !== null) await flushing;
                unflushed = 0;
                backgroundFlushes += 1;
                flushing = handle.datasync().finally(() => {
                  backgroundFlushes -= 1;
                });
                // Awaited before the next flush or at the end; never an unhandled rejection.
                flushing.catch(() => {});
              }
            }
            if (flushing !== null) await flushing;
          },
          sync,
        ),
      );
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw writeFailed(e, key);
    }
  }
}

class S3Storage {
  /**
   * @param {string} bucket
   * @param {string} prefix
   * @param {{endpoint?: string, region?: string}} options
   */
  constructor(bucket, prefix, options = {}) {
    this.bucket = bucket;
    this.prefix = prefix.replace(/^\/+|\/+$/g, '');
    this.options = options;
    this.client = null;
  }

  sdk() {
    if (this.client === null) {
      const s3 = require('@aws-sdk/client-s3');
      this.s3 = s3;
      this.client = new s3.S3Client({
        region: this.options.region || process.env.AWS_REGION || 'eu-west-1',
        ...(this.options.endpoint ? { endpoint: this.options.endpoint, forcePathStyle: true } : {}),
      });
    }
    return this.s3;
  }

  objectKey(key) {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  url(key) {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  async get(key) {
    const s3 = this.sdk();
    try {
      const out = await this.client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (e) {
      if (e.name === 'NoSuchKey' || (e.$metadata && e.$metadata.httpStatusCode === 404)) return null;
      throw e;
    }
  }

  async put(key, bytes) {
    const s3 = this.sdk();
    await this.client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes }));
  }

  async putIfAbsent(key, bytes) {
    const s3 = this.sdk();
    try {
      await this.client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes, IfNoneMatch: '*' }));
      return true;
    } catch (e) {
      const status = e.$metadata && e.$metadata.httpStatusCode;
      if (e.name === 'PreconditionFailed' || status === 412) return false;
      // A concurrent conditional write of the same key: S3 asks to retry; the other one won.
      if (e.name === 'ConditionalRequestConflict' || status === 409) return false;
      throw e;
    }
  }

  /**
   * Replaces `key`'s object with `bytes` if it holds exactly `stale`: read with its ETag, then put
   * with `If-Match` on that ETag, so that of concurrent take-overs exactly one wins (S3's
   * conditional writes; a new record has another ETag). Then read back: a take-over wins only if
   * the object holds its `bytes` (every caller's record differs). S3 checks and writes atomically;
   * an S3-compatible store that does not (moto under concurrent requests: two winners in 1 of 200
   * rounds of `js/test/pipeline-races.test.js`) lets the later write stand, and the earlier writer
   * then sees it and loses.
   * @param {string} key
   * @param {Buffer} stale
   * @param {Buffer} bytes
   * @returns {Promise<boolean>}
   */
  async takeOver(key, stale, bytes) {
    const s3 = this.sdk();
    let etag;
    try {
      const out = await this.client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      const now = Buffer.from(await out.Body.transformToByteArray());
      if (!now.equals(stale)) return false;
      etag = out.ETag;
    } catch (e) {
      if (e.name === 'NoSuchKey' || (e.$metadata && e.$metadata.httpStatusCode === 404)) return false;
      throw e;
    }
    try {
      await this.client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes, IfMatch: etag }));
    } catch (e) {
      const status = e.$metadata && e.$metadata.httpStatusCode;
      // Changed or gone meanwhile (412, 404), or a concurrent conditional write (409): lost.
      if (e.name === 'PreconditionFailed' || e.name === 'NoSuchKey' || status === 412 || status === 404 || e.name === 'ConditionalRequestConflict' || status === 409) return false;
      throw e;
    }
    const now = await this.get(key);
    return now !== null && now.equals(bytes);
  }

  async delete(key) {
    const s3 = this.sdk();
    await this.client.send(new s3.DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async list(prefix) {
    const s3 = this.sdk();
    const full = this.objectKey(prefix.replace(/\/$/, '')) + '/';
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const keys = [];
    let token;
    do {
      const out = await this.client.send(new s3.ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ContinuationToken: token }));
      for (const o of out.Contents || []) keys.push(o.Key.slice(strip));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  /**
   * Deletes the objects, 1,000 to a request (DeleteObjects; one DeleteObject each where the
   * server does not implement it).
   * @param {string[]} keys
   */
  async deleteAll(keys) {
    const s3 = this.sdk();
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      let out;
      try {
        out = await this.client.send(new s3.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((key) => ({ Key: this.objectKey(key) })), Quiet: true } }));
      } catch (e) {
        const status = e.$metadata && e.$metadata.httpStatusCode;
        if (e.name !== 'NotImplemented' && status !== 501) throw e;
        for (const key of batch) await this.delete(key);
        continue;
      }
      const errors = out.Errors || [];
      if (errors.length > 0) throw new Error(`could not delete ${errors.length} of ${batch.length} objects (${errors[0].Key}: ${errors[0].Code} ${errors[0].Message || ''})`);
    }
  }

  /**
   * Aborts the unfinished multipart uploads of `key` (a merge whose writer died mid-upload: its
   * parts are stored and billed until the upload is aborted). Only for a key nobody streams any
   * more (a live upload would fail). Returns how many were aborted.
   * @param {string} key
   */
  async abandonStreams(key) {
    const s3 = this.sdk();
    const objectKey = this.objectKey(key);
    let aborted = 0;
    let keyMarker;
    let uploadIdMarker;
    for (;;) {
      const out = await this.client.send(new s3.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: objectKey, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const upload of out.Uploads || []) {
        if (upload.Key !== objectKey) continue;
        await this.client.send(new s3.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: upload.UploadId }));
        aborted += 1;
      }
      if (!out.IsTruncated) return aborted;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
  }

  /** Nothing to do: an abandoned multipart upload is not an object (a lifecycle rule aborts it). */
  async removeStaleTemporaries() {
    return 0;
  }

  /** Nothing to do: an S3 put is whole or not at all, and leaves nothing behind. */
  async removeDeadTemporaries() {
    return 0;
  }

  async putStream(key, chunks) {
    this.sdk();
    const { Upload } = require('@aws-sdk/lib-storage');
    const { Readable } = require('node:stream');
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: Readable.from(chunks) },
    });
    await upload.done();
  }
}

/**
 * The storage at a location: `s3://bucket/prefix` or a folder path.
 * @param {string} location
 * @param {{endpoint?: string, region?: string}} [options] S3 endpoint (e.g. a moto server) and region
 */
function openStorage(location, options = {}) {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  const storage = m ? new S3Storage(m[1], m[2], options) : new FolderStorage(location.replace(/^file:\/\//, ''));
  const full = process.env.TARIFFSIM_TEST_STORAGE_FULL;
  return full && !process.env.AWS_LAMBDA_FUNCTION_NAME ? withFullDisk(storage, new RegExp(full)) : storage;
}

/**
 * Test-only fault injection (TARIFFSIM_TEST_STORAGE_FULL=<regular expression>, never in Lambda):
 * every write of a key the expression matches fails as on a full disk (ENOSPC), so that a test can
 * fill the disk at a chosen point of a run. A wrapper made when the storage is opened: a storage
 * opened without the variable has nothing of it on its path.
 */
function withFullDisk(storage, pattern) {
  const full = (key) => {
    if (!pattern.test(key)) return;
    const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    throw typed('StorageWriteFailed', `storage write of ${key} failed (ENOSPC: the disk is full)`, { cause });
  };
  const wrapped = Object.create(storage);
  for (const method of ['put', 'putIfAbsent', 'putStream', 'takeOver']) {
    wrapped[method] = async (key, ...rest) => {
      full(key);
      return storage[method](key, ...rest);
    };
  }
  if (storage.putSync) {
    wrapped.putSync = (key, bytes) => {
      full(key);
      return storage.putSync(key, bytes);
    };
  }
  return wrapped;
}

module.exports = { openStorage, FolderStorage, S3Storage };
