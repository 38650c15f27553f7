// What a user installs besides the image (SPEC section 11), each answering `list` on the real control
// plane: `kubectl ttl` through kubectl's plugin mechanism (the testbed's kubectl, dist/ on PATH) and
// from its krew archive (manifest checksum and files checked); the `npm pack` package installed
// globally into a temporary prefix; the single executable (scripts/build.ts --sea) in a container
// made from the runtime base without Node (hack/image-bases), when podman is present.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { useCliTestbed } from '../testbed/cli.ts';
import { createJob } from '../testbed/jobs.ts';
import { podman, podmanAvailable } from '../testbed/podman.ts';
import { binaries, REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import { type Clients, newNamespace } from '../testbed/use.ts';

const run = promisify(execFile);
const DIST = join(REPO_ROOT, 'dist');
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

let tb: Testbed;
let c: Clients;
let ns: string;

before(async () => {
  ({ tb, c } = await useCliTestbed());
  ns = await newNamespace(c, 'dist');
  await createJob(c, { name: 'dist-sample', namespace: ns, annotations: { 'kttl.dev/ttl': '2h' } });
});

/** A command with only these directories (and the system's) on PATH, kubeconfig of the testbed. */
async function sh(bin: string, args: string[], path: string[]): Promise<{ stdout: string; stderr: string }> {
  return await run(bin, args, {
    env: {
      PATH: [...path, '/usr/bin', '/bin'].join(':'),
      KUBECONFIG: tb.kubeconfigPath,
      NO_COLOR: '1',
      HOME: tb.state.dir,
    },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 120_000,
  });
}
const nodeDir = join(REPO_ROOT, 'node_modules/.bin');

describe('kubectl ttl (kubectl plugin)', () => {
  test('the real kubectl finds dist/kubectl-ttl on PATH and runs `kubectl ttl list`', async () => {
    const kubectlDir = join(binaries().kubectl, '..');
    const plugins = await sh(binaries().kubectl, ['plugin', 'list'], [DIST, nodeDir, kubectlDir]);
    assert.match(plugins.stdout, /dist\/kubectl-ttl\b/);
    const help = await sh(binaries().kubectl, ['ttl', '--help'], [DIST, nodeDir]);
    assert.match(help.stdout, /^Usage: kubectl ttl \[options\] \[command\]/m, 'help names the plugin');
    const sub = await sh(binaries().kubectl, ['ttl', 'list', '--help'], [DIST, nodeDir]);
    assert.match(sub.stdout, /^Usage: kubectl ttl list\b/m);
    const list = await sh(binaries().kubectl, ['ttl', 'list', '-n', ns], [DIST, nodeDir]);
    assert.match(list.stdout, /dist-sample/);
    console.log(`# kubectl ttl list -n ${ns}:\n${list.stdout.trimEnd().replace(/^/gm, '#   ')}`);
  });

  test("the krew archive matches dist/krew/ttl.yaml's sha256 and files, and runs as installed", async () => {
    const archive = join(DIST, `krew/kubectl-ttl-${version}.tar.gz`);
    const manifest = parse(readFileSync(join(DIST, 'krew/ttl.yaml'), 'utf8')) as {
      kind: string;
      metadata: { name: string };
      spec: {
        version: string;
        platforms: Array<{ uri: string; sha256: string; bin: string; files: Array<{ from: string }> }>;
      };
    };
    assert.equal(manifest.kind, 'Plugin');
    assert.equal(manifest.metadata.name, 'ttl');
    assert.equal(manifest.spec.version, `v${version}`);
    const p = manifest.spec.platforms[0]!;
    assert.equal(p.sha256, createHash('sha256').update(readFileSync(archive)).digest('hex'));
    assert.ok(p.uri.endsWith(`/kubectl-ttl-${version}.tar.gz`));
    const dir = join(tb.state.dir, `krew-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    await run('tar', ['-xzf', archive, '-C', dir]);
    for (const f of p.files) assert.ok(existsSync(join(dir, f.from)), `${f.from} in the archive`);
    assert.ok(statSync(join(dir, p.bin)).mode & 0o100, 'the bin is executable');
    const list = await sh(binaries().kubectl, ['ttl', 'list', '-n', ns], [dir, nodeDir]);
    assert.match(list.stdout, /dist-sample/);
  });
});

describe('npm pack: the installable CLI', () => {
  test('the package holds the bundle only; installed globally, `kttl --help` and `kttl list` work', async () => {
    const dir = join(tb.state.dir, `npm-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const { stdout } = await run('npm', ['pack', '--json', REPO_ROOT], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [info] = JSON.parse(stdout) as Array<{
      filename: string;
      size: number;
      files: Array<{ path: string }>;
    }>;
    assert.deepEqual(info!.files.map((f) => f.path).sort(), ['README.md', 'dist/kttl.mjs', 'package.json']);
    const t0 = Date.now();
    await run(
      'npm',
      ['install', '-g', '--no-audit', '--no-fund', '--prefix', join(dir, 'g'), join(dir, info!.filename)],
      {
        cwd: dir,
        timeout: 240_000,
      },
    );
    const installMs = Date.now() - t0;
    const bin = join(dir, 'g/bin');
    const help = await sh(join(bin, 'kttl'), ['--help'], [bin, nodeDir]);
    assert.match(help.stdout, /^Usage: kttl \[options\] \[command\]/m);
    const list = await sh(join(bin, 'kttl'), ['list', '-n', ns], [bin, nodeDir]);
    assert.match(list.stdout, /dist-sample/);
    const deps = readdirSync(join(dir, 'g/lib/node_modules/kttl')).includes('node_modules');
    console.log(
      `# npm pack: ${info!.filename} ${(info!.size / 1e6).toFixed(2)} MB; npm install -g in ${installMs} ms${deps ? ' (with the runtime dependencies the bundle already holds)' : ''}`,
    );
  });
});

const noPodman = podmanAvailable();
describe('single executable (Node SEA)', { skip: noPodman }, () => {
  test('dist/kttl-linux-amd64 answers `kttl list` in a container without Node', {
    timeout: 600_000,
  }, async () => {
    const exe = join(DIST, `kttl-linux-${process.arch === 'x64' ? 'amd64' : process.arch}`);
    const src = statSync(join(DIST, 'kttl.mjs')).mtimeMs;
    if (!existsSync(exe) || statSync(exe).mtimeMs < src)
      await run(process.execPath, ['scripts/build.ts', '--sea'], { cwd: REPO_ROOT, timeout: 300_000 });
    const bases = (await run('bash', [join(REPO_ROOT, 'hack/image-bases')], { timeout: 600_000 })).stdout;
    const image = /RUNTIME_NONODE_IMAGE=(\S+)/.exec(bases)?.[1];
    assert.ok(image, bases);
    const base = [
      'run',
      '--rm',
      '--network',
      'host',
      '--read-only',
      '--cap-drop=ALL',
      '--user',
      '65532:65532',
    ];
    // No Node in it: neither where the runtime image has it nor anywhere on PATH.
    await assert.rejects(podman([...base, '--entrypoint', '/nodejs/bin/node', image, '--version']));
    await assert.rejects(podman([...base, '--entrypoint', 'node', image, '--version']));
    // The testbed's admin kubeconfig, readable by the container's user 65532.
    const kubeconfig = join(tb.state.dir, `sea-kubeconfig-${process.pid}`);
    copyFileSync(tb.kubeconfigPath, kubeconfig);
    chmodSync(kubeconfig, 0o644);
    const mounts = ['-v', `${exe}:/usr/local/bin/kttl:ro`, '-v', `${kubeconfig}:/kubeconfig:ro`];
    const out = await podman([
      ...base,
      ...mounts,
      '--entrypoint',
      '/usr/local/bin/kttl',
      image,
      '--kubeconfig',
      '/kubeconfig',
      'list',
      '-n',
      ns,
    ]);
    assert.match(out, /dist-sample/);
    console.log(
      `# ${exe.replace(`${REPO_ROOT}/`, '')}: ${(statSync(exe).size / 1e6).toFixed(1)} MB, kttl list answered in ${image} (no Node)`,
    );
  });
});
