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
//   delete(key)            removes it (no error when absent)
//   list(prefix)           -> keys under prefix, sorted
//   putStream(key, chunks) an object from an async iterable of Buffers, whole or not at all: the
//                          merged impressions (a file renamed into place on a folder, a multipart
//                          upload on S3)
//   url(key)               where the object is, for people and logs
//
// A run is assembled the same way on both: each chunk's impressions stored as an object of their
// own, concatenated once by the merge (js/runtime/chunk-pipeline.js). The backend changes where the
// bytes go, never how a run is put together.

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const { codes, typed } = require('./errors');

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

function checkKey(key) {
  if (typeof key !== 'string' || !KEY.test(key) || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw typed(codes.InvalidReference, `storage key ${JSON.stringify(key)} is not a relative path of letters, digits, '.', '_', '-' and '/'`);
  }
  return key;
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
      await fsp.mkdir(dir, { recursive: true });
      if (this.dirs.size > 10_000) this.dirs.clear();
      this.dirs.add(dir);
    }
    try {
      return await write();
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      await fsp.mkdir(dir, { recursive: true });
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
    try {
      return await fsp.readFile(this.file(key));
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw e;
    }
  }

  async put(key, bytes) {
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await this.inFolder(file, () => fsp.writeFile(tmp, bytes));
    await fsp.rename(tmp, file);
  }

  async putIfAbsent(key, bytes) {
    const file = this.file(key);
    // Write a temporary file, then link it into place: link(2) fails when the name exists, so
    // exactly one caller wins and nobody sees a half-written object.
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await this.inFolder(file, () => fsp.writeFile(tmp, bytes));
    try {
      await fsp.link(tmp, file);
      return true;
    } catch (e) {
      if (e.code === 'EEXIST') return false;
      throw e;
    } finally {
      await fsp.unlink(tmp).catch(() => {});
    }
  }

  async delete(key) {
    await fsp.rm(this.file(key), { force: true });
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
        throw e;
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

  async putStream(key, chunks) {
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.tmp`;
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const out = fs.createWriteStream(tmp);
    try {
      for await (const chunk of chunks) {
        if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
      }
    } finally {
      await new Promise((resolve, reject) => out.end((e) => (e ? reject(e) : resolve())));
    }
    await fsp.rename(tmp, file);
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
  for (const method of ['put', 'putIfAbsent', 'putStream']) {
    wrapped[method] = async (key, ...rest) => {
      full(key);
      return storage[method](key, ...rest);
    };
  }
  return wrapped;
}

module.exports = { openStorage, FolderStorage, S3Storage };
