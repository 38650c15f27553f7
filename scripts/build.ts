// Bundles the CLI and controller into one ESM file (dist/kttl.mjs): loading client-node's 225
// generated modules unbundled costs ~0.75 s and 145 MB before any work; bundled ~0.24 s and 82 MB.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/kttl.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: 'linked',
  legalComments: 'none',
  // CommonJS dependencies bundled into ESM still call require(): give them one.
  banner: {
    js: "import { createRequire as __kttlCreateRequire } from 'node:module'; const require = __kttlCreateRequire(import.meta.url);",
  },
  // pg's optional native binding: never used (src/archive/postgres.ts), never bundled.
  external: ['pg-native'],
  logLevel: 'warning',
});
console.log('built dist/kttl.mjs');
