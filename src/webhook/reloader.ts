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
 * The last bytes seen for one material (good or bad) and whether they failed, so an unchanged bad file
 * is reported once (`repeated: false`) and then quietly (`repeated: true`) instead of on every poll.
 */
class SeenMaterial<T> {
  private digest: string | undefined;
  private failed: MaterialError | undefined;

  /** Parses the bytes behind `seen` unless they are the ones seen last time. */
  check(seen: string, parse: () => T): LoadOutcome<T> {
    if (seen === this.digest) {
      return this.failed ? { status: 'failed', error: this.failed, repeated: true, missing: false } : { status: 'unchanged' };
    }
    try {
      const material = parse();
      this.digest = seen;
      this.failed = undefined;
      return { status: 'loaded', material };
    } catch (err) {
      return this.failure(seen, err, false);
    }
  }

  failure(seen: string, error: unknown, missing: boolean): LoadOutcome<T> {
    const repeated = seen === this.digest && this.failed !== undefined;
    this.digest = seen;
    this.failed = asMaterialError(error);
    return { status: 'failed', error: this.failed, repeated, missing };
  }
}

/** The serving certificate + key alone (the mail gateway has no CA to inject). */
export class ServingMaterialLoader {
  private readonly seen = new SeenMaterial<ServingMaterial>();

  constructor(readonly files: Pick<MaterialFiles, 'certFile' | 'keyFile'>) {}

  async load(): Promise<LoadOutcome<ServingMaterial>> {
    const { certFile, keyFile } = this.files;
    // allSettled, then the first failure in file order: the same state always gives the same
    // message, so "repeated" detection works when both files are missing.
    const [cert, key] = await Promise.allSettled([
      readMountedFile(certFile, 'serving certificate'),
      readMountedFile(keyFile, 'serving key'),
    ]);
    if (cert.status === 'rejected' || key.status === 'rejected') {
      const err = (cert.status === 'rejected' ? cert.reason : (key as PromiseRejectedResult).reason) as MaterialError;
      return this.seen.failure(digest('unreadable', err.message), err, true);
    }
    return this.seen.check(digest(cert.value, key.value), () => servingMaterialFrom(cert.value, key.value, { certFile, keyFile }));
  }
}

/** Reads the files and reports, per material, whether it changed and whether the new bytes are usable. */
export class MaterialLoader {
  private readonly serving: ServingMaterialLoader;
  private readonly ca = new SeenMaterial<CaMaterial>();

  constructor(readonly files: MaterialFiles) {
    this.serving = new ServingMaterialLoader(files);
  }

  async load(): Promise<ReloadReport> {
    return { serving: await this.serving.load(), ca: await this.loadCa() };
  }

  private async loadCa(): Promise<LoadOutcome<CaMaterial>> {
    let pem: string;
    try {
      pem = await readMountedFile(this.files.caFile, 'mail CA file');
    } catch (err) {
      return this.ca.failure(digest('unreadable', (err as Error).message), err, true);
    }
    return this.ca.check(digest(pem), () => caMaterialFrom(pem, this.files.caFile));
  }
}

function asMaterialError(err: unknown): MaterialError {
  return err instanceof MaterialError ? err : new MaterialError(String((err as Error)?.message ?? err));
}

export interface DirectoryWatch {
  close(): void;
}

/** Unique parent directories of the mounted files, in a stable order. */
export function directoriesToWatch(files: Pick<MaterialFiles, 'certFile' | 'keyFile'> & { caFile?: string }): string[] {
  return [...new Set([files.certFile, files.keyFile, files.caFile].filter((f): f is string => f !== undefined).map((file) => dirname(file)))].sort();
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
