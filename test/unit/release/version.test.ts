// One version (package.json's) for the CLI, the image (hack/image tags it), the chart and the krew
// manifest: a release that bumps one and not the others fails here, and in .github/workflows/release.yml.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { VERSION } from '../../../src/cli/program.ts';

const root = join(import.meta.dirname, '../../..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

test("package.json's version is the CLI's, the chart's version and appVersion, and CHANGELOG's newest", () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version;
  assert.match(version, /^\d+\.\d+\.\d+(-[\w.]+)?$/);
  assert.equal(VERSION, version, 'kttl --version');
  const chart = parse(read('deploy/helm/kttl/Chart.yaml')) as { version: string; appVersion: string };
  assert.equal(chart.version, version, 'Chart.yaml version');
  assert.equal(chart.appVersion, version, 'Chart.yaml appVersion (the image tag the chart deploys)');
  const newest = /^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]?/m.exec(read('CHANGELOG.md'))?.[1];
  assert.equal(newest, version, "CHANGELOG.md's newest section");
  assert.match(
    read('deploy/krew/ttl.yaml'),
    /version: v\{\{VERSION\}\}/,
    'the krew manifest takes it at build time',
  );
});
