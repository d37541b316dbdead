// Bundles the studio's browser code with esbuild into web/static/vendor/ (never committed):
// studio.js (modeler + properties panel), viewer.js (instance diagrams) and studio.css (+ fonts).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'vendor');

const started = Date.now();
await build({
  entryPoints: {
    studio: join(here, 'modeler.js'), viewer: join(here, 'viewer.js'), 'studio-css': join(here, 'studio.css'),
    'dmn-editor': join(here, 'dmn-editor.js'), 'dmn-editor-css': join(here, 'dmn-editor.css'),
  },
  outdir: out,
  bundle: true,
  minify: !process.env.STUDIO_DEV,
  format: 'iife',
  target: ['es2020'],
  sourcemap: false,
  legalComments: 'linked',
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  assetNames: 'fonts/[name]-[hash]',
  logLevel: 'warning',
});
console.log(`studio assets built in ${Date.now() - started} ms -> ${out}`);
