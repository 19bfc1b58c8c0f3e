// Readers (a TLS server reloading its cert, an app container starting while the init container runs
// again) must see either the old file or the new one, never half of one: write a temporary file in the
// same directory, fsync it, rename it over the target, fsync the directory.
import { randomBytes } from 'node:crypto';
import { chmod, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_MARKER = '.demomail-tmp-';

export interface StagedFile {
  target: string;
  temp: string;
}

/** Writes data to a hidden temporary file next to `target` (fsynced, mode set exactly, umask ignored). */
export async function stageFile(target: string, data: string | Buffer, mode: number): Promise<StagedFile> {
  const temp = join(dirname(target), `.${basename(target)}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  // open()'s mode is filtered by the umask; a restrictive umask would hide the CA from other users.
  await chmod(temp, mode);
  return { target, temp };
}

/** Renames staged files into place (in the given order) and fsyncs their directories. */
export async function commitFiles(staged: StagedFile[]): Promise<void> {
  for (const file of staged) await rename(file.temp, file.target);
  for (const dir of new Set(staged.map((f) => dirname(f.target)))) await syncDirectory(dir);
}

/** Removes staged files that were not committed (after a failure). */
export async function discardFiles(staged: StagedFile[]): Promise<void> {
  await Promise.all(staged.map((f) => unlink(f.temp).catch(() => undefined)));
}

/** Deletes temporary files a crashed earlier run left behind in dir (only ours, recognised by name). */
export async function removeStaleTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith('.') && n.includes(TEMP_MARKER)).map((n) => unlink(join(dir, n)).catch(() => undefined)));
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename durable; some filesystems refuse fsync on a directory, which is not worth failing for.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}
