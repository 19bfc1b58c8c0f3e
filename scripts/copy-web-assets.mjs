// Part of `npm run build` (and the image build): the viewer page's static files beside its compiled JS.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const from = 'src/viewer/web';
const to = 'dist/src/viewer/web';
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) if (/\.(html|css|svg)$/.test(name)) copyFileSync(join(from, name), join(to, name));
