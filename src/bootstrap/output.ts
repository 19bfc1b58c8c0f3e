// `demomail bootstrap --output DIR`: the same objects as YAML files, one per object, for GitOps and
// inspection. Nothing is read from a cluster, so every CA, key and password is generated fresh.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Settings } from '../config.js';
import { commitFiles, stageFile } from '../pki/atomic-file.js';
import { describe, type KubeObject } from './objects.js';

/** Stable file name: kind-name.yaml, or kind-namespace-name.yaml for objects outside our namespace. */
export function outputFileName(obj: KubeObject, settings: Settings): string {
  const ns = obj.metadata.namespace;
  const parts = [obj.kind.toLowerCase(), ...(ns && ns !== settings.namespace ? [ns] : []), obj.metadata.name];
  return `${parts.join('-')}.yaml`;
}

export function outputHeader(obj: KubeObject, settings: Settings): string {
  const lines = [
    `# ${describe(obj)}, written by \`demomail bootstrap --output\`.`,
    '# Apply with server-side apply and field manager "demomail" (kubectl apply --server-side --field-manager=demomail)',
    '# so that a later `demomail bootstrap` run takes these objects over instead of fighting over them.',
  ];
  if (obj.kind === 'Secret') {
    lines.push(
      '# SECRET MATERIAL: generated fresh by this run (no cluster was read); another run generates different',
      '# keys and passwords. Do not commit it in clear text: seal or encrypt it (sealed-secrets, SOPS, …).',
    );
  }
  if (obj.kind === 'Secret' && obj.metadata.name === settings.names.webhookTlsSecret) {
    lines.push(
      `# The MutatingWebhookConfiguration "${settings.names.webhookConfiguration}" must carry ca.crt of this Secret as caBundle`,
      '# (base64 of ca.crt) on every webhook; keep caBundle in your GitOps tool\'s ignoreDifferences when the',
      '# bootstrap Job sets it instead.',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Writes every object (atomically per file); returns the written paths in plan order. */
export async function writeObjects(dir: string, objects: KubeObject[], settings: Settings): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  for (const obj of objects) {
    const path = join(dir, outputFileName(obj, settings));
    // 0600, set exactly (umask ignored, fresh exclusive temp file): the directory holds keys and passwords.
    await commitFiles([await stageFile(path, outputHeader(obj, settings) + stringify(obj, { lineWidth: 0 }), 0o600)]);
    written.push(path);
  }
  return written;
}
