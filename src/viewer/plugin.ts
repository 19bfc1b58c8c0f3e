// The mail viewer (DESIGN §8): page, JSON API under /api/v1/, on the gateway's HTTP port 8025.
// Registered by the gateway's HTTP server (src/gateway/http.ts) with the capture store. Everything
// here (basic auth included) covers the viewer's routes only: /livez, /readyz and /metrics stay open.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { CaptureStore } from '../gateway/store.js';
import { apiRoutes, httpError } from './api.js';
import { liveRoutes } from './events.js';
import { ParsedCache } from './parse.js';
import { APP_CSP, basicAuthAccepts } from './security.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * What the viewer demands now: nothing (`off`: no Secret), these credentials (`on`), or nothing
 * passes (`broken`: the Secret is there but unusable; fail closed, the reason says what to fix).
 */
export type ViewerAuth = { kind: 'off' } | { kind: 'on'; credentials: Credentials } | { kind: 'broken'; reason: string };

export interface ViewerOptions {
  store: CaptureStore;
  /** Empties GreenMail's mailboxes (POST /api/mail/purge on 127.0.0.1) for "purge all". */
  purgeMailboxes: () => Promise<void>;
  /**
   * Basic auth for the page and the API, from Secret demomail-ui-auth when it exists: fixed
   * credentials, or a function asked on every request (the gateway re-reads the mounted Secret).
   */
  basicAuth?: Credentials | (() => ViewerAuth);
  /** Directory of the built page (index.html, app.css, *.js); found next to this module by default. */
  webRoot?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The built page: `dist/src/viewer/web/` (tsconfig.web.json + scripts/copy-web-assets.mjs). When this
 * module runs from its TypeScript source (tests), the build output of the same checkout is used.
 */
export function defaultWebRoot(): string {
  const here = import.meta.dirname;
  const beside = join(here, 'web');
  return existsSync(join(beside, 'app.js')) ? beside : join(here, '..', '..', 'dist', 'src', 'viewer', 'web');
}

/** The page's files, read once: a few KB, served from memory. */
function loadAssets(root: string): Map<string, { type: string; body: Buffer }> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  if (!existsSync(root)) return assets;
  for (const name of readdirSync(root)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(root, name)) });
  }
  return assets;
}

export const viewerPlugin: FastifyPluginAsync<ViewerOptions> = async (app, options) => {
  const { store, purgeMailboxes, basicAuth } = options;
  if (basicAuth) {
    const current = (): ViewerAuth => (typeof basicAuth === 'function' ? basicAuth() : { kind: 'on', credentials: basicAuth });
    app.addHook('onRequest', async (request, reply) => {
      const auth = current();
      if (auth.kind === 'off') return;
      if (auth.kind === 'broken') throw httpError(503, `viewer basic auth is misconfigured: ${auth.reason}`);
      if (basicAuthAccepts(request.headers.authorization, auth.credentials)) return;
      reply.header('WWW-Authenticate', 'Basic realm="demomail", charset="UTF-8"');
      throw httpError(401, 'authentication required');
    });
  }
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Referrer-Policy', 'no-referrer').header('X-Content-Type-Options', 'nosniff');
  });

  const cache = new ParsedCache(store);
  await apiRoutes(app, { store, cache, purgeMailboxes });
  await liveRoutes(app, { store, cache });

  const assets = loadAssets(options.webRoot ?? defaultWebRoot());
  const sendAsset = (name: string) => async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const asset = assets.get(name);
    if (!asset) throw httpError(503, `viewer page not built (${name} missing): run npm run build`);
    reply.header('Content-Type', asset.type).header('Content-Security-Policy', APP_CSP).header('Cache-Control', 'no-cache');
    return asset.body;
  };
  app.get('/', sendAsset('index.html'));
  for (const name of assets.keys()) if (name !== 'index.html') app.get(`/${name}`, sendAsset(name));
};
