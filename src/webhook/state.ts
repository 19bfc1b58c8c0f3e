// What the running webhook currently holds, and the pure readiness rule over it.
import { injectionSettings, type InjectionSettings, type Settings } from '../config.js';
import type { CaMaterial, ServingMaterial } from './tls-material.js';

export interface ReadinessInput {
  /** A real serving certificate from the mounted files (not the start-up placeholder). */
  servingLoaded: boolean;
  caLoaded: boolean;
  draining: boolean;
  servingProblem?: string | undefined;
  caProblem?: string | undefined;
}

/** Ready only with both the serving certificate and the mail CA loaded, and not draining (DESIGN §4). */
export function readiness(input: ReadinessInput): { ready: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (input.draining) reasons.push('shutting down: draining in-flight requests');
  if (!input.servingLoaded) reasons.push(`serving certificate not loaded${input.servingProblem ? `: ${input.servingProblem}` : ''}`);
  if (!input.caLoaded) reasons.push(`mail CA not loaded${input.caProblem ? `: ${input.caProblem}` : ''}`);
  return { ready: reasons.length === 0, reasons };
}

export class WebhookState {
  serving: Omit<ServingMaterial, 'keyPem'> | undefined;
  ca: CaMaterial | undefined;
  /** Settings for planInjection; caPem is '' until the CA is loaded. */
  injection: InjectionSettings;
  draining = false;
  servingProblem: string | undefined;
  caProblem: string | undefined;

  constructor(readonly settings: Settings) {
    this.injection = injectionSettings(settings, '');
  }

  setCa(ca: CaMaterial): void {
    this.ca = ca;
    this.caProblem = undefined;
    this.injection = injectionSettings(this.settings, ca.pem);
  }

  setServing(serving: ServingMaterial): void {
    // The key stays with the TLS context only.
    const { keyPem: _keyPem, ...publicPart } = serving;
    this.serving = publicPart;
    this.servingProblem = undefined;
  }

  get caLoaded(): boolean {
    return this.ca !== undefined;
  }

  readiness(): { ready: boolean; reasons: string[] } {
    return readiness({
      servingLoaded: this.serving !== undefined,
      caLoaded: this.caLoaded,
      draining: this.draining,
      servingProblem: this.servingProblem,
      caProblem: this.caProblem,
    });
  }
}
