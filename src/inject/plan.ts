// PLACEHOLDER (contract only) — owned by the injection helper.
import type { Operation } from 'fast-json-patch';
import type { InjectionSettings } from '../config.js';
export type JsonObject = { [key: string]: unknown };
export type InjectionPlan =
  | { action: 'inject'; ops: Operation[]; warnings: string[] }
  | { action: 'skip'; reason: string };
export class InjectionRefused extends Error {
  override name = 'InjectionRefused';
}
export interface PlanOptions {
  /** Offline `demomail inject`: only pods labelled demomail/inject=true. The webhook relies on the API server's selectors instead. */
  requireOptInLabel?: boolean;
}
export function planInjection(
  _pod: JsonObject,
  _requestNamespace: string | undefined,
  _settings: InjectionSettings,
  _options: PlanOptions = {},
): InjectionPlan {
  throw new Error('not implemented yet');
}
