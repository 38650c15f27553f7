// The MutatingWebhookConfiguration of `kttl webhook config` (src/webhook/config.ts) and the command.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import {
  BUILTIN_RESOURCES,
  webhookConfiguration,
  webhookConfigurationYaml,
} from '../../../src/webhook/config.ts';
import { selfSignedPair, type TlsFiles } from '../../../src/webhook/server.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');

type Webhook = Record<string, unknown> & {
  clientConfig: Record<string, unknown>;
  rules: Array<Record<string, unknown>>;
  namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
};

describe('webhook configuration', () => {
  let pair: TlsFiles;
  let pem: string;
  before(async () => {
    pair = await selfSignedPair();
    pem = readFileSync(pair.certFile, 'utf8');
  });

  test('the contract: name kttl, Ignore, None, v1, CREATE only, kube-system and own namespace excluded', () => {
    const cfg = webhookConfiguration({
      url: 'https://10.0.0.5:9443/mutate',
      caBundlePem: pem,
      namespace: 'kttl',
    });
    assert.equal(cfg.apiVersion, 'admissionregistration.k8s.io/v1');
    assert.equal(cfg.kind, 'MutatingWebhookConfiguration');
    assert.equal((cfg.metadata as { name: string }).name, 'kttl');
    const [w, ...rest] = cfg.webhooks as Webhook[];
    assert.equal(rest.length, 0);
    assert.ok(w);
    assert.equal(w.failurePolicy, 'Ignore');
    assert.equal(w.sideEffects, 'None');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.equal(w.timeoutSeconds, 5);
    assert.equal(w.reinvocationPolicy, 'IfNeeded');
    assert.equal(w.clientConfig.url, 'https://10.0.0.5:9443/mutate');
    assert.equal(Buffer.from(w.clientConfig.caBundle as string, 'base64').toString(), pem);
    assert.deepEqual(w.namespaceSelector.matchExpressions, [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kttl'] },
    ]);
    for (const r of w.rules) assert.deepEqual(r.operations, ['CREATE']);
    assert.deepEqual(w.rules[0], {
      operations: ['CREATE'],
      apiGroups: ['batch'],
      apiVersions: ['v1'],
      resources: ['jobs'],
      scope: 'Namespaced',
    });
    assert.deepEqual(w.rules[1]?.resources, ['pods']);
    const custom = w.rules
      .slice(2)
      .flatMap((r) => (r.resources as string[]).map((x) => `${(r.apiGroups as string[])[0]}/${x}`));
    assert.deepEqual(custom.sort(), BUILTIN_RESOURCES.map((r) => `${r.group}/${r.resource}`).sort());
    assert.ok(
      custom.includes('argoproj.io/workflows') && custom.includes('sparkoperator.k8s.io/sparkapplications'),
    );
  });

  test('options: service, timeout, no pods, no built-ins, extra resources, extra exclusions', () => {
    const cfg = webhookConfiguration({
      service: { name: 'kttl-webhook' },
      caBundlePem: pem,
      namespace: 'ops',
      timeoutSeconds: 2,
      pods: false,
      builtinKinds: false,
      resources: [{ group: 'example.com', resource: 'builds' }],
      excludeNamespaces: ['kube-public'],
      failurePolicy: 'Fail',
    });
    const w = (cfg.webhooks as Webhook[])[0]!;
    assert.deepEqual(w.clientConfig.service, {
      namespace: 'ops',
      name: 'kttl-webhook',
      path: '/mutate',
      port: 443,
    });
    assert.equal(w.timeoutSeconds, 2);
    assert.equal(w.failurePolicy, 'Fail');
    assert.deepEqual(
      w.rules.map((r) => r.resources),
      [['jobs'], ['builds']],
    );
    assert.deepEqual(w.namespaceSelector.matchExpressions[0]?.values, ['kube-system', 'ops', 'kube-public']);
  });

  test('a URL without a path gets /mutate', () => {
    const w = (
      webhookConfiguration({ url: 'https://h:9443', caBundlePem: pem, namespace: 'kttl' })
        .webhooks as Webhook[]
    )[0]!;
    assert.equal(w.clientConfig.url, 'https://h:9443/mutate');
  });

  test('mistakes are refused with a clear message', () => {
    const base = { caBundlePem: pem, namespace: 'kttl' };
    assert.throws(() => webhookConfiguration({ ...base, url: 'http://h/mutate' }), /must use https/);
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h/mutate?x=1' }),
      /query or a fragment/,
    );
    assert.throws(() => webhookConfiguration({ ...base, url: 'not a url' }), /is not a URL/);
    assert.throws(() => webhookConfiguration({ ...base }), /exactly one of --url and --service/);
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h', service: { name: 'x' } }),
      /exactly one of --url and --service/,
    );
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h', timeoutSeconds: 31 }),
      /from 1 to 30/,
    );
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h', timeoutSeconds: 0 }),
      /from 1 to 30/,
    );
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h', caBundlePem: 'nope' }),
      /no PEM certificate/,
    );
    assert.throws(
      () => webhookConfiguration({ ...base, url: 'https://h', namespace: 'Bad_NS' }),
      /not a valid name/,
    );
  });

  test('the YAML parses back to the object and explains its choices in comments', () => {
    const o = { url: 'https://10.0.0.5:9443/mutate', caBundlePem: pem, namespace: 'kttl' };
    const text = webhookConfigurationYaml(o);
    assert.deepEqual(parse(text), webhookConfiguration(o));
    assert.match(text, /# IfNeeded: called again when a later webhook changed the object/);
    assert.match(text, /# kttl's failure \(down, slow, erroring\) never blocks a create/);
  });

  test('kttl webhook config prints it; mistakes exit 1 with one line', async () => {
    const node = process.execPath;
    const main = join(ROOT, 'src/main.ts');
    const { stdout } = await run(node, [
      main,
      'webhook',
      'config',
      '--url',
      'https://127.0.0.1:9443/mutate',
      '--ca-bundle-file',
      pair.certFile,
      '-n',
      'kttl-system',
      '--timeout-seconds',
      '3',
    ]);
    const cfg = parse(stdout) as { webhooks: Webhook[] };
    assert.equal(cfg.webhooks[0]?.timeoutSeconds, 3);
    assert.deepEqual(cfg.webhooks[0]?.namespaceSelector.matchExpressions[0]?.values, [
      'kube-system',
      'kttl-system',
    ]);
    const bad = await run(node, [
      main,
      'webhook',
      'config',
      '--url',
      'http://x',
      '--ca-bundle-file',
      pair.certFile,
    ]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(bad);
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr.trim(),
      'error: --url must use https (the API server only calls webhooks over TLS)',
    );
    const missing = await run(node, [
      main,
      'webhook',
      'config',
      '--url',
      'https://x',
      '--ca-bundle-file',
      '/nonexistent',
    ]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(missing?.code, 1);
    assert.match(missing?.stderr ?? '', /^error: cannot read --ca-bundle-file \/nonexistent: /);
  });
});
