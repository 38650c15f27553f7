// Bundles the CLI and controller into one ESM file (dist/kttl.mjs): loading client-node's 225
// generated modules unbundled costs ~0.75 s and 145 MB before any work; bundled ~0.24 s and 82 MB.
// Also writes what ships from that bundle (SPEC section 11):
//   dist/kubectl-ttl                      the same program under kubectl's plugin name (`kubectl ttl …`)
//   dist/krew/kubectl-ttl-<version>.tar.gz  its krew archive, and dist/krew/ttl.yaml: deploy/krew/ttl.yaml
//                                         filled in (version, archive sha256, release URL); not in dist/
//                                         itself, where kubectl would take the archive for a plugin
//   --sea: dist/kttl-linux-<arch>         a single executable (Node's SEA: the bundle as CommonJS in a
//                                         copy of this Node, stripped), which needs no Node installed
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build, type Plugin } from 'esbuild';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
const sea = process.argv.includes('--sea');

// In an ESM bundle esbuild keeps `import … from 'node:http'` as an ESM import, and Node builds
// the ESM facade of a built-in by reading every export: node:http's lazy WebSocket/MessageEvent
// getters then load Node's own copy of undici and the web streams (+13 MB RSS in bare Node, for
// nothing: src/kube/http.ts uses the npm undici). Imported through the bundle's require() instead,
// a built-in costs what `require` costs (docs/decisions.md "Idle baseline").
const builtinsAsRequire: Plugin = {
  name: 'builtins-as-require',
  setup(b) {
    b.onResolve({ filter: /^[a-z:_/]+$/ }, (a) =>
      a.kind === 'import-statement' && isBuiltin(a.path)
        ? { path: a.path.replace(/^node:/, ''), namespace: 'node-builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (a) => ({
      contents: `module.exports = require('node:${a.path}');`,
      loader: 'js',
    }));
  },
};

// client-node's config.js imports `createConfiguration` and `ServerConfiguration` (for
// makeApiClient, which kttl never calls) from gen/index.js, whose re-exports evaluate every
// generated model and API class at start: ~15 MB of an idle `kttl run`. Pointed at the two
// modules that define them, makeApiClient still works and the rest of gen/ is not bundled.
const clientNodeGen: Plugin = {
  name: 'client-node-gen',
  setup(b) {
    b.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (a) =>
      /@kubernetes\/client-node\/dist\/config\.js$/.test(a.importer)
        ? { path: join(dirname(a.importer), 'gen/index.js'), namespace: 'client-node-gen' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'client-node-gen' }, (a) => ({
      contents:
        "export { createConfiguration } from './configuration.js';\nexport { ServerConfiguration } from './servers.js';\n",
      resolveDir: dirname(a.path),
      loader: 'js',
    }));
  },
};

const common: BuildOptions = {
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node24',
  legalComments: 'none',
  // Whitespace and comments out, names kept (stack traces stay readable): without it a few non-ASCII
  // characters in bundled comments make V8 hold the source as a two-byte string (~8 MB more of an
  // idle `kttl run`; docs/decisions.md "Idle baseline").
  minifyWhitespace: true,
  minifySyntax: true,
  // pg's optional native binding: never used (src/archive/postgres.ts), never bundled.
  external: ['pg-native'],
  plugins: [builtinsAsRequire, clientNodeGen],
  logLevel: 'warning',
};

await build({
  ...common,
  outfile: 'dist/kttl.mjs',
  format: 'esm',
  sourcemap: 'linked',
  // CommonJS dependencies bundled into ESM still call require(): give them one.
  banner: {
    js: "import { createRequire as __kttlCreateRequire } from 'node:module'; const require = __kttlCreateRequire(import.meta.url);",
  },
});
console.log('built dist/kttl.mjs');
// The image's build (Dockerfile) needs the bundle alone.
if (process.argv.includes('--bundle-only')) process.exit(0);

// kubectl runs any `kubectl-<name>` on PATH as `kubectl <name>`; src/cli/program.ts's programName
// then says `kubectl ttl` in help and usage. A copy, not a symlink: krew archives and Windows.
copyFileSync('dist/kttl.mjs', 'dist/kubectl-ttl');
chmodSync('dist/kubectl-ttl', 0o755);

/** A ustar archive of regular files (owner 0, mtime 0: the same bytes for the same inputs). */
function tar(files: Array<{ name: string; mode: number; data: Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    const field = (off: number, len: number, s: string) => h.write(s, off, len, 'ascii');
    const octal = (off: number, len: number, n: number) =>
      field(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
    field(0, 100, f.name);
    octal(100, 8, f.mode);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, f.data.length);
    octal(136, 12, 0);
    field(148, 8, '        ');
    field(156, 1, '0');
    field(257, 8, 'ustar\u000000');
    let sum = 0;
    for (const b of h) sum += b;
    field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const archiveName = `kubectl-ttl-${pkg.version}.tar.gz`;
const archive = gzipSync(
  tar([
    { name: 'kubectl-ttl', mode: 0o755, data: readFileSync('dist/kubectl-ttl') },
    { name: 'README.md', mode: 0o644, data: readFileSync('README.md') },
  ]),
  { level: 9 },
);
mkdirSync('dist/krew', { recursive: true });
writeFileSync(join('dist/krew', archiveName), archive);
// The release workflow sets the URL its assets are downloaded from; a local build names the file.
const base = process.env.KTTL_RELEASE_URL ?? `file://${join(process.cwd(), 'dist/krew')}`;
writeFileSync(
  'dist/krew/ttl.yaml',
  readFileSync('deploy/krew/ttl.yaml', 'utf8')
    .replaceAll('{{VERSION}}', pkg.version)
    .replaceAll('{{URI}}', `${base}/${archiveName}`)
    .replaceAll('{{SHA256}}', createHash('sha256').update(archive).digest('hex')),
);
console.log(`built dist/kubectl-ttl, dist/krew/${archiveName}, dist/krew/ttl.yaml`);

if (sea) {
  // Node 24's SEA runs one CommonJS script (no top-level await: src/main.ts has none).
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const out = `dist/kttl-linux-${arch}`;
  const dir = join(tmpdir(), `kttl-sea-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    await build({ ...common, outfile: join(dir, 'kttl.cjs'), format: 'cjs' });
    const config = join(dir, 'sea-config.json');
    writeFileSync(
      config,
      JSON.stringify({
        main: join(dir, 'kttl.cjs'),
        output: join(dir, 'kttl.blob'),
        disableExperimentalSEAWarning: true,
        // V8's code cache for the bundle: less parsing at every start.
        useCodeCache: true,
      }),
    );
    execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'ignore' });
    copyFileSync(process.execPath, out);
    chmodSync(out, 0o755);
    // Node's debug info and symbol table (~18 MB) are not needed to run it; strip when available.
    try {
      execFileSync('strip', ['--strip-all', out], { stdio: 'ignore' });
    } catch {
      console.log('strip not found: the executable keeps its symbols');
    }
    execFileSync(
      'postject',
      [
        out,
        'NODE_SEA_BLOB',
        join(dir, 'kttl.blob'),
        '--sentinel-fuse',
        'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
      ],
      { stdio: 'ignore' },
    );
    console.log(`built ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
