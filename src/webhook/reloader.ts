// Hot reload of the mounted serving certificate, key and mail CA.
//
// Why directories: the kubelet publishes a Secret/ConfigMap volume as `..2024_01_01_00_00_00.123/`,
// points the `..data` symlink at it with an atomic rename, and exposes `tls.crt -> ..data/tls.crt`.
// A watch on `tls.crt` itself follows the old inode and goes silent after the first swap; a watch on
// the directory sees the `..data` rename every time. A slow poll backs the watch up (a directory that
// does not exist yet cannot be watched, and inotify events can be lost).
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import {
  MaterialError,
  caMaterialFrom,
  readMountedFile,
  servingMaterialFrom,
  type CaMaterial,
  type ServingMaterial,
} from './tls-material.js';

export interface MaterialFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export type LoadOutcome<T> =
  | { status: 'unchanged' }
  | { status: 'loaded'; material: T }
  | { status: 'failed'; error: MaterialError; repeated: boolean; missing: boolean };

export interface ReloadReport {
  serving: LoadOutcome<ServingMaterial>;
  ca: LoadOutcome<CaMaterial>;
}

function digest(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

/**
 * Reads the files and reports, per material, whether it changed and whether the new bytes are usable.
 * It remembers the digest of the last bytes it saw (good or bad), so an unchanged bad file is reported
 * once (`repeated: false`) and then quietly (`repeated: true`) instead of on every poll.
 */
export class MaterialLoader {
  private servingDigest: string | undefined;
  private caDigest: string | undefined;
  private servingFailed: MaterialError | undefined;
  private caFailed: MaterialError | undefined;

  constructor(readonly files: MaterialFiles) {}

  async load(): Promise<ReloadReport> {
    return { serving: await this.loadServing(), ca: await this.loadCa() };
  }

  private async loadServing(): Promise<LoadOutcome<ServingMaterial>> {
    const { certFile, keyFile } = this.files;
    // allSettled, then the first failure in file order: the same state always gives the same
    // message, so "repeated" detection works when both files are missing.
    const [cert, key] = await Promise.allSettled([
      readMountedFile(certFile, 'serving certificate'),
      readMountedFile(keyFile, 'serving key'),
    ]);
    if (cert.status === 'rejected' || key.status === 'rejected') {
      const err = (cert.status === 'rejected' ? cert.reason : (key as PromiseRejectedResult).reason) as MaterialError;
      return this.servingFailure(digest('unreadable', err.message), err, true);
    }
    const certPem = cert.value;
    const keyPem = key.value;
    const seen = digest(certPem, keyPem);
    if (seen === this.servingDigest) {
      return this.servingFailed ? { status: 'failed', error: this.servingFailed, repeated: true, missing: false } : { status: 'unchanged' };
    }
    try {
      const material = servingMaterialFrom(certPem, keyPem, { certFile, keyFile });
      this.servingDigest = seen;
      this.servingFailed = undefined;
      return { status: 'loaded', material };
    } catch (err) {
      return this.servingFailure(seen, err as MaterialError, false);
    }
  }

  private servingFailure(seen: string, error: MaterialError, missing: boolean): LoadOutcome<ServingMaterial> {
    const repeated = seen === this.servingDigest && this.servingFailed !== undefined;
    this.servingDigest = seen;
    this.servingFailed = asMaterialError(error);
    return { status: 'failed', error: this.servingFailed, repeated, missing };
  }

  private async loadCa(): Promise<LoadOutcome<CaMaterial>> {
    let pem: string;
    try {
      pem = await readMountedFile(this.files.caFile, 'mail CA file');
    } catch (err) {
      return this.caFailure(digest('unreadable', (err as Error).message), err as MaterialError, true);
    }
    const seen = digest(pem);
    if (seen === this.caDigest) {
      return this.caFailed ? { status: 'failed', error: this.caFailed, repeated: true, missing: false } : { status: 'unchanged' };
    }
    try {
      const material = caMaterialFrom(pem, this.files.caFile);
      this.caDigest = seen;
      this.caFailed = undefined;
      return { status: 'loaded', material };
    } catch (err) {
      return this.caFailure(seen, err as MaterialError, false);
    }
  }

  private caFailure(seen: string, error: MaterialError, missing: boolean): LoadOutcome<CaMaterial> {
    const repeated = seen === this.caDigest && this.caFailed !== undefined;
    this.caDigest = seen;
    this.caFailed = asMaterialError(error);
    return { status: 'failed', error: this.caFailed, repeated, missing };
  }
}

function asMaterialError(err: unknown): MaterialError {
  return err instanceof MaterialError ? err : new MaterialError(String((err as Error)?.message ?? err));
}

export interface DirectoryWatch {
  close(): void;
}

/** Unique parent directories of the mounted files, in a stable order. */
export function directoriesToWatch(files: MaterialFiles): string[] {
  return [...new Set([files.certFile, files.keyFile, files.caFile].map((file) => dirname(file)))].sort();
}

/**
 * Calls `onChange` (debounced) after any event in the directories, and every `pollMs` regardless.
 * Directories that cannot be watched yet (not mounted) are retried on each poll.
 */
export function watchDirectories(
  directories: string[],
  onChange: () => void,
  options: { debounceMs: number; pollMs: number },
): DirectoryWatch {
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const schedule = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    // The kubelet writes the new dir, then renames ..data: one burst of events, one reload.
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, options.debounceMs);
    timer.unref();
  };
  const tryWatch = (directory: string): void => {
    if (watchers.has(directory)) return;
    try {
      const watcher = watch(directory, { persistent: false }, schedule);
      watcher.on('error', () => {
        watcher.close();
        watchers.delete(directory);
        schedule();
      });
      watchers.set(directory, watcher);
    } catch {
      // Not there yet; the poll retries.
    }
  };
  directories.forEach(tryWatch);
  const poll = setInterval(() => {
    directories.forEach(tryWatch);
    schedule();
  }, options.pollMs);
  poll.unref();
  return {
    close(): void {
      closed = true;
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
