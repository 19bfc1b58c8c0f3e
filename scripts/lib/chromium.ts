// Debian's chromium driven by playwright-core (no browser download: the package ships none). Used by
// the viewer's browser test and bench/viewer.ts. playwright gives every launch a fresh temporary profile.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** DEMOMAIL_CHROMIUM, else Debian's /usr/bin/chromium; undefined when neither exists. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env['DEMOMAIL_CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((path): path is string => !!path && existsSync(path));
}

export const CHROMIUM_MISSING = 'chromium is not installed (Debian: apt-get install -y chromium; or set DEMOMAIL_CHROMIUM)';

export async function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    // Without the background-networking flags Chromium keeps trying to reach Google on a closed network.
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
