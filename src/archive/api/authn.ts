// Who is asking: an aggregated API server trusts only the front proxy (kube-apiserver's aggregation
// layer), which proves itself with a client certificate signed by the request-header CA and names
// the user in X-Remote-* headers. The CA, the allowed names and the header names come from the
// `kube-system/extension-apiserver-authentication` ConfigMap kube-apiserver publishes (as
// k8s.io/apiserver's RequestHeaderAuthenticationOptions reads them).
import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { KubeHttp } from '../../kube/http.ts';

export interface RequestHeaderConfig {
  /** PEM bundle: the CAs a front proxy's client certificate must chain to. */
  clientCa: string;
  /** CNs the front proxy may have; empty: any certificate the CA signed. */
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

export interface UserInfo {
  name: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export const AUTHENTICATION_CONFIGMAP =
  '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication';

function jsonList(v: string | undefined, fallback: string[]): string[] {
  if (v === undefined || v === '') return fallback;
  try {
    const parsed: unknown = JSON.parse(v);
    return Array.isArray(parsed) ? parsed.map(String) : fallback;
  } catch {
    return fallback;
  }
}

/** The request-header settings of the ConfigMap's data; undefined when it has no request-header CA. */
export function requestHeaderConfig(
  data: Record<string, string> | undefined,
): RequestHeaderConfig | undefined {
  const ca = data?.['requestheader-client-ca-file'];
  if (!ca?.trim()) return undefined;
  return {
    clientCa: ca,
    allowedNames: jsonList(data?.['requestheader-allowed-names'], []),
    usernameHeaders: jsonList(data?.['requestheader-username-headers'], ['X-Remote-User']),
    groupHeaders: jsonList(data?.['requestheader-group-headers'], ['X-Remote-Group']),
    extraHeaderPrefixes: jsonList(data?.['requestheader-extra-headers-prefix'], ['X-Remote-Extra-']),
  };
}

export async function readRequestHeaderConfig(http: KubeHttp): Promise<RequestHeaderConfig> {
  const cm = await http.request<{ data?: Record<string, string> }>('get', 'GET', AUTHENTICATION_CONFIGMAP);
  const config = requestHeaderConfig(cm.data);
  if (!config) {
    throw new Error(
      'kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: the API server runs without the aggregation layer (--requestheader-client-ca-file)',
    );
  }
  return config;
}

export type AuthnResult = { ok: true; user: UserInfo } | { ok: false; message: string };

/**
 * The user of a request on a TLS socket whose server asked for client certificates with the
 * request-header CA (so `authorized` means the chain checked out).
 */
export function authenticate(req: IncomingMessage, config: RequestHeaderConfig): AuthnResult {
  const socket = req.socket as TLSSocket;
  const peer =
    typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (!peer)
    return {
      ok: false,
      message: 'Unauthorized: no client certificate (requests come through the API server)',
    };
  if (!socket.authorized) {
    return {
      ok: false,
      message: `Unauthorized: client certificate not signed by the request-header CA (${socket.authorizationError})`,
    };
  }
  const cn = commonName(peer);
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(cn)) {
    return {
      ok: false,
      message: `Unauthorized: client certificate CN ${JSON.stringify(cn)} is not an allowed front proxy`,
    };
  }
  return userFromHeaders(req.headersDistinct, config);
}

function commonName(cert: X509Certificate): string {
  const m = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject);
  return m?.[1] ?? '';
}

/** The X-Remote-* headers as a user (pure; unit-tested). */
export function userFromHeaders(
  headers: Record<string, string[] | undefined>,
  config: Pick<RequestHeaderConfig, 'usernameHeaders' | 'groupHeaders' | 'extraHeaderPrefixes'>,
): AuthnResult {
  let name = '';
  for (const h of config.usernameHeaders) {
    const v = headers[h.toLowerCase()]?.[0];
    if (v) {
      name = v;
      break;
    }
  }
  if (!name) return { ok: false, message: 'Unauthorized: the front proxy named no user' };
  const groups = config.groupHeaders.flatMap((h) => headers[h.toLowerCase()] ?? []);
  const extra: Record<string, string[]> = {};
  for (const prefix of config.extraHeaderPrefixes.map((p) => p.toLowerCase())) {
    for (const [h, values] of Object.entries(headers)) {
      if (!h.startsWith(prefix) || !values) continue;
      // The key is percent-encoded by the proxy (k8s.io/apiserver headerrequest).
      let key = h.slice(prefix.length);
      try {
        key = decodeURIComponent(key);
      } catch {}
      key = key.toLowerCase();
      extra[key] = [...(extra[key] ?? []), ...values];
    }
  }
  return { ok: true, user: { name, groups, extra } };
}
