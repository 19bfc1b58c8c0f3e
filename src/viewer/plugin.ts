// The mail viewer (DESIGN §8): page, JSON API under /api/v1/, on the gateway's HTTP port 8025.
// Registered by the gateway's HTTP server (src/gateway/http.ts) with the capture store.
import type { FastifyPluginAsync } from 'fastify';
import type { CaptureStore } from '../gateway/store.js';

export interface ViewerOptions {
  store: CaptureStore;
  /** Empties GreenMail's mailboxes (POST /api/mail/purge on 127.0.0.1) for "purge all". */
  purgeMailboxes: () => Promise<void>;
  /** Basic auth for the page and the API, from Secret demomail-ui-auth when it exists. */
  basicAuth?: { username: string; password: string };
}

// Filled in by the viewer work (issue 9); until then the gateway serves health and metrics only.
export const viewerPlugin: FastifyPluginAsync<ViewerOptions> = async () => {};
