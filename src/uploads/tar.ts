import { gunzipSync, gzipSync } from 'node:zlib';
import { HostError } from '../errors/index.js';

/**
 * A small ustar reader and writer for plugin archives (`tar.gz`). The reader
 * is the trust boundary of uploads: it refuses anything but plain files and
 * directories with relative paths inside the archive, and bounds the entry
 * count and the unpacked size (the gunzip itself stops at the limit, so a
 * gzip bomb never inflates past it). Nothing is written here; `extract` does
 * that once the whole archive passed.
 */

const BLOCK = 512;

export interface TarEntry {
  /** Relative path with forward slashes, no `.`/`..` segments, no leading or trailing slash. */
  path: string;
  type: 'file' | 'dir';
  data: Buffer;
}

export interface TarLimits {
  maxEntries: number;
  /** Bound on the unpacked archive (tar headers included), in bytes. */
  maxBytes: number;
}

// --- writing -------------------------------------------------------------------------------------------

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(path: string, type: 'file' | 'dir', size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let name = type === 'dir' ? `${path}/` : path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    // ustar splits a long path at a slash: up to 155 bytes of prefix, up to 100 of name
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(name) > 100) {
      throw new HostError('PH_ERR_USAGE', `${path}: path too long for a ustar archive`);
    }
  }
  h.write(name, 0, 100, 'utf8');
  h.write(octal(type === 'dir' ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime 0: the same tree packs to the same bytes
  h.write('        ', 148, 'ascii'); // checksum counted as spaces
  h.write(type === 'dir' ? '5' : '0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  h.write(octal(checksum(h), 7), 148, 'ascii');
  return h;
}

function checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return sum;
}

/** Packs entries (in the given order) into a gzipped ustar archive. */
export function packTarGz(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const size = e.type === 'file' ? e.data.length : 0;
    parts.push(header(e.path, e.type, size));
    if (size > 0) {
      parts.push(e.data);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(parts));
}

// --- reading -------------------------------------------------------------------------------------------

function text(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? len : end).toString('utf8');
}

function number(b: Buffer, start: number, len: number, what: string): number {
  const s = text(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw bad(`${what} is not an octal number`);
  return Number.parseInt(s, 8);
}

function bad(message: string): HostError {
  return new HostError('PH_ERR_UPLOAD_BAD_ARCHIVE', `not a valid tar archive: ${message}`);
}

/** Checks a path from an archive and returns it normalized; refuses what could land outside the unpack directory. */
export function safeEntryPath(raw: string): string {
  const shown = JSON.stringify(raw);
  if (raw.includes('\0') || raw.includes('\\'))
    throw new HostError('PH_ERR_UPLOAD_UNSAFE_PATH', `entry ${shown}: NUL or backslash in the path`);
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) throw new HostError('PH_ERR_UPLOAD_UNSAFE_PATH', `entry ${shown}: absolute path`);
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new HostError('PH_ERR_UPLOAD_UNSAFE_PATH', `entry ${shown}: ".." in the path`);
  return segments.join('/');
}

/** Parses one `x` (pax) header's records; only `path` is used. */
function paxPath(data: Buffer): string | undefined {
  let rest = data.toString('utf8');
  let found: string | undefined;
  while (rest.length > 0) {
    const m = /^(\d+) /.exec(rest);
    if (m === null) break;
    const record = rest.slice(m[0].length, Number(m[1]) - 1);
    rest = rest.slice(Number(m[1]));
    if (record.startsWith('path=')) found = record.slice(5);
  }
  return found;
}

/**
 * Reads a gzipped tar archive within `limits`, refusing (with a coded 4xx
 * error) anything that is not gzip or not tar, links, device files and FIFOs,
 * unsafe paths, too many entries and too many bytes. Pax and GNU long-name
 * headers are honoured for the path; every other extension is refused.
 */
export function readTarGz(archive: Buffer, limits: TarLimits): TarEntry[] {
  if (archive.length < 2 || archive[0] !== 0x1f || archive[1] !== 0x8b) {
    throw new HostError('PH_ERR_UPLOAD_NOT_GZIP', 'the body is not a gzip stream (expected a .tar.gz of the plugin directory)');
  }
  let tar: Buffer;
  try {
    tar = gunzipSync(archive, { maxOutputLength: limits.maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HostError('PH_ERR_UPLOAD_TOO_LARGE', `the archive unpacks to more than ${limits.maxBytes} bytes`, { cause: err });
    }
    throw new HostError('PH_ERR_UPLOAD_NOT_GZIP', `the body is not a valid gzip stream: ${(err as Error).message}`, { cause: err });
  }
  const entries: TarEntry[] = [];
  let longName: string | undefined;
  let off = 0;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break; // end of archive
    const sum = number(h, 148, 8, 'checksum');
    if (sum !== checksum(h)) throw bad(`header checksum mismatch at byte ${off}`);
    const size = number(h, 124, 12, 'size');
    const flag = String.fromCharCode(h[156] as number);
    const dataStart = off + BLOCK;
    if (dataStart + size > tar.length) throw bad('truncated entry');
    const data = tar.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    const prefix = text(h, 257, 6) === 'ustar' ? text(h, 345, 155) : '';
    const raw = longName ?? (prefix === '' ? text(h, 0, 100) : `${prefix}/${text(h, 0, 100)}`);
    longName = undefined;
    if (flag === 'x' || flag === 'L') {
      longName = flag === 'L' ? text(data, 0, data.length) : paxPath(data);
      continue;
    }
    if (flag === 'g') continue; // pax global header: nothing in it is used
    if (flag === '1' || flag === '2') {
      throw new HostError(
        'PH_ERR_UPLOAD_LINK',
        `entry ${JSON.stringify(raw)}: ${flag === '1' ? 'hard link' : 'symbolic link'}s are refused`,
      );
    }
    if (flag === '3' || flag === '4' || flag === '6') {
      throw new HostError('PH_ERR_UPLOAD_SPECIAL_FILE', `entry ${JSON.stringify(raw)}: device files and FIFOs are refused`);
    }
    const type = flag === '5' ? 'dir' : flag === '0' || flag === '\0' || flag === '7' ? 'file' : undefined;
    if (type === undefined) throw bad(`entry ${JSON.stringify(raw)}: unsupported type "${flag}"`);
    const p = safeEntryPath(raw);
    if (p === '') continue; // the archive's root directory itself
    entries.push({ path: p, type, data });
    if (entries.length > limits.maxEntries) {
      throw new HostError('PH_ERR_UPLOAD_TOO_MANY_ENTRIES', `the archive has more than ${limits.maxEntries} entries`);
    }
  }
  return entries;
}
