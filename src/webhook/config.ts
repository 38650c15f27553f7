// The MutatingWebhookConfiguration that registers `kttl webhook` with the API server, as printed by
// `kttl webhook config` (docs/webhook.md): name `kttl`, failurePolicy Ignore, sideEffects None,
// admissionReviewVersions [v1], CREATE only, kube-system and kttl's own namespace excluded.
import { X509Certificate } from 'node:crypto';
import { Document, isMap, isPair, isScalar } from 'yaml';
import { builtinCustomKinds } from '../rules/kinds.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'kttl';
/** The webhook's name inside the configuration (must be a fully qualified name). */
export const WEBHOOK_NAME = 'ttl.kttl.dev';
export const MUTATE_PATH = '/mutate';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** group/resource; '' is the core group. */
export interface WebhookResource {
  group: string;
  resource: string;
}

/**
 * The built-in custom kinds as group/plural, from the kind registry (src/rules/kinds.ts): the
 * registry's plural, never one guessed from the kind.
 */
export const BUILTIN_RESOURCES: readonly WebhookResource[] = builtinCustomKinds().map((k) => ({
  group: k.group,
  resource: k.plural,
}));

export interface WebhookConfigOptions {
  /** Default `kttl`. */
  name?: string;
  /** `https://host[:port]/mutate`: where the API server reaches the webhook… */
  url?: string;
  /** …or a Service in `namespace` (port default 443, path /mutate). */
  service?: { name: string; port?: number };
  /** PEM certificate(s) the API server uses to verify the webhook's serving certificate. */
  caBundlePem: string;
  /** kttl's own namespace: excluded, and the Service's namespace. */
  namespace: string;
  /** 1..30 (the API server's range); default 5. */
  timeoutSeconds?: number;
  /** Default Ignore: kttl's failure never blocks a create. */
  failurePolicy?: 'Ignore' | 'Fail';
  /** Default true: Pods too (every Pod create then passes the webhook). */
  pods?: boolean;
  /** Default true: the built-in custom kinds. */
  builtinKinds?: boolean;
  /** More custom resources (kinds a policy names). */
  resources?: readonly WebhookResource[];
  /** More namespaces to exclude. */
  excludeNamespaces?: readonly string[];
  /** Extra matchLabels on the namespaceSelector (e.g. to opt namespaces in). */
  namespaceMatchLabels?: Readonly<Record<string, string>>;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkName(what: string, v: string, re: RegExp, max: number): void {
  if (v.length > max || !re.test(v)) throw new Error(`${what} ${JSON.stringify(v)} is not a valid name`);
}

/** Checks a CA bundle: at least one PEM certificate, each parseable. Returns the PEM text. */
export function checkCaBundle(pem: string, source = 'the CA bundle'): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new Error(`${source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new Error(`${source} holds a certificate that does not parse: ${(err as Error).message}`);
    }
  }
  return `${blocks.join('\n')}\n`;
}

export function checkWebhookUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `--url ${JSON.stringify(url)} is not a URL (e.g. https://kttl-webhook.example:9443/mutate)`,
    );
  }
  // The API server's own rules for clientConfig.url.
  if (u.protocol !== 'https:')
    throw new Error(`--url must use https (the API server only calls webhooks over TLS)`);
  if (u.username || u.password) throw new Error('--url must not carry user or password');
  if (u.search || u.hash) throw new Error('--url must not have a query or a fragment');
  if (u.pathname === '/') u.pathname = MUTATE_PATH;
  return u.toString();
}

/** The MutatingWebhookConfiguration object (admissionregistration.k8s.io/v1). */
export function webhookConfiguration(o: WebhookConfigOptions): Record<string, unknown> {
  const name = o.name ?? WEBHOOK_CONFIGURATION_NAME;
  checkName('name', name, DNS_SUBDOMAIN, 253);
  checkName('namespace', o.namespace, DNS_LABEL, 63);
  const timeoutSeconds = o.timeoutSeconds ?? 5;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) {
    throw new Error(`timeoutSeconds must be a whole number from 1 to 30, got ${timeoutSeconds}`);
  }
  if ((o.url === undefined) === (o.service === undefined)) {
    throw new Error('give exactly one of --url and --service');
  }
  let clientConfig: Record<string, unknown>;
  const caBundle = Buffer.from(checkCaBundle(o.caBundlePem)).toString('base64');
  if (o.url !== undefined) {
    clientConfig = { url: checkWebhookUrl(o.url), caBundle };
  } else {
    const s = o.service!;
    checkName('service', s.name, DNS_LABEL, 63);
    const port = s.port ?? 443;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid service port ${port}`);
    clientConfig = { service: { namespace: o.namespace, name: s.name, path: MUTATE_PATH, port }, caBundle };
  }

  const rules: Array<Record<string, unknown>> = [
    {
      operations: ['CREATE'],
      apiGroups: ['batch'],
      apiVersions: ['v1'],
      resources: ['jobs'],
      scope: 'Namespaced',
    },
  ];
  if (o.pods !== false) {
    rules.push({
      operations: ['CREATE'],
      apiGroups: [''],
      apiVersions: ['v1'],
      resources: ['pods'],
      scope: 'Namespaced',
    });
  }
  const custom = [...(o.builtinKinds === false ? [] : BUILTIN_RESOURCES), ...(o.resources ?? [])];
  const byGroup = new Map<string, Set<string>>();
  for (const r of custom) {
    if (r.group === 'batch' && r.resource === 'jobs') continue;
    if (r.group === '' && r.resource === 'pods') continue;
    const set = byGroup.get(r.group) ?? new Set<string>();
    set.add(r.resource);
    byGroup.set(r.group, set);
  }
  for (const [group, resources] of byGroup) {
    // Any version: a policy matches a kind by group and kind, whatever the version (match.ts).
    rules.push({ operations: ['CREATE'], apiGroups: [group], apiVersions: ['*'], resources: [...resources] });
  }

  const excluded = [...new Set(['kube-system', o.namespace, ...(o.excludeNamespaces ?? [])])];
  for (const ns of excluded) checkName('excluded namespace', ns, DNS_LABEL, 63);
  const namespaceSelector: Record<string, unknown> = {
    matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: excluded }],
  };
  if (o.namespaceMatchLabels && Object.keys(o.namespaceMatchLabels).length > 0) {
    namespaceSelector.matchLabels = { ...o.namespaceMatchLabels };
  }

  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: {
      name,
      labels: { 'app.kubernetes.io/name': 'kttl', 'app.kubernetes.io/component': 'webhook' },
    },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig,
        rules,
        failurePolicy: o.failurePolicy ?? 'Ignore',
        sideEffects: 'None',
        timeoutSeconds,
        matchPolicy: 'Equivalent',
        namespaceSelector,
        reinvocationPolicy: 'IfNeeded',
      },
    ],
  };
}

const COMMENTS: Record<string, string> = {
  failurePolicy:
    " kttl's failure (down, slow, erroring) never blocks a create: the object is admitted unchanged",
  sideEffects: ' answers depend only on the request and the policies; dry-run requests are safe',
  timeoutSeconds: ' the API server stops waiting after this and, with Ignore, admits the object unchanged',
  namespaceSelector: " kube-system and kttl's own namespace are never mutated (kttl must be able to start)",
  reinvocationPolicy:
    ' IfNeeded: called again when a later webhook changed the object (e.g. added labels or a TTL),' +
    '\n so enforce: max still applies to the final object; kttl is idempotent (a TTL it set counts as' +
    "\n the object's own on the second call)",
};

/** The configuration as YAML, with comments on the choices. */
export function webhookConfigurationYaml(o: WebhookConfigOptions): string {
  const doc = new Document(webhookConfiguration(o));
  doc.commentBefore =
    ' kttl mutating admission webhook: stamps TTLs from TTLPolicy/ClusterTTLPolicy on CREATE.\n' +
    ' Generated by `kttl webhook config`; apply with: kubectl apply -f -';
  const webhook = doc.getIn(['webhooks', 0]);
  if (isMap(webhook)) {
    for (const item of webhook.items) {
      if (isPair(item) && isScalar(item.key) && typeof item.key.value === 'string') {
        const c = COMMENTS[item.key.value];
        if (c) item.key.commentBefore = c;
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}
