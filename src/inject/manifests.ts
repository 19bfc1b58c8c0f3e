// PLACEHOLDER (contract only) — owned by the injection helper.
import type { InjectionSettings } from '../config.js';
export interface ManifestOptions {
  /** Used for pods/templates without metadata.namespace. */
  namespace?: string;
  /** File name for messages ("-" = stdin). */
  source: string;
}
/** Multi-document YAML in, multi-document YAML out; throws ManifestError(message names source + reason). */
export function injectManifests(_text: string, _settings: InjectionSettings, _options: ManifestOptions): string {
  throw new Error('not implemented yet');
}
export class ManifestError extends Error {
  override name = 'ManifestError';
}
