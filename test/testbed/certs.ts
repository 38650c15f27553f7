// Per-run PKI for the testbed, made with openssl: a CA, the apiserver's serving cert, an admin
// client cert (system:masters), the service-account signing key pair, and the aggregation layer's
// front-proxy CA with the client cert kube-apiserver presents to aggregated API servers.
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const runAsync = promisify(execFile);

export interface Pki {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
  /** The request-header CA (--requestheader-client-ca-file), separate from the client CA. */
  frontProxyCaCert: string;
  frontProxyCaKey: string;
  /** CN front-proxy-client, signed by the front-proxy CA (--proxy-client-cert-file). */
  proxyClientCert: string;
  proxyClientKey: string;
}

const EC_KEY = (out: string) => [
  'genpkey',
  '-algorithm',
  'EC',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-out',
  out,
];

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Signs a client certificate for `subject` (e.g. `/O=system:masters/CN=admin`) with the CA. */
export function issueClientCert(
  dir: string,
  pki: Pki,
  base: string,
  subject: string,
): { cert: string; key: string } {
  return signClientCert(dir, pki.caCert, pki.caKey, base, subject);
}

function signClientCert(
  dir: string,
  caCert: string,
  caKey: string,
  base: string,
  subject: string,
): { cert: string; key: string } {
  const ext = join(dir, `${base}.ext`);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  openssl(['genrsa', '-out', `${base}.key`, '2048'], dir);
  openssl(['req', '-new', '-key', `${base}.key`, '-subj', subject, '-out', `${base}.csr`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      '30',
      '-out',
      `${base}.crt`,
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}

/** Signs a serving certificate for the given SANs (e.g. `IP:127.0.0.1,DNS:localhost`). */
export function issueServingCert(
  dir: string,
  pki: Pki,
  base: string,
  cn: string,
  sans: string,
): { cert: string; key: string } {
  const ext = join(dir, `${base}.ext`);
  writeFileSync(
    ext,
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  openssl(['genrsa', '-out', `${base}.key`, '2048'], dir);
  openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-out', `${base}.csr`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      pki.caCert,
      '-CAkey',
      pki.caKey,
      '-CAcreateserial',
      '-days',
      '30',
      '-out',
      `${base}.crt`,
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}

export function makePki(dir: string): Pki {
  openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=kttl-testbed-ca',
      '-days',
      '30',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const pki: Pki = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: '',
    serverKey: '',
    adminCert: '',
    adminKey: '',
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    // Filled by addFrontProxy (the testbed makes it while etcd starts).
    frontProxyCaCert: '',
    frontProxyCaKey: '',
    proxyClientCert: '',
    proxyClientKey: '',
  };
  const server = issueServingCert(
    dir,
    pki,
    'apiserver',
    'kube-apiserver',
    'IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  );
  pki.serverCert = server.cert;
  pki.serverKey = server.key;
  const admin = issueClientCert(dir, pki, 'admin', '/O=system:masters/CN=admin');
  pki.adminCert = admin.cert;
  pki.adminKey = admin.key;
  return pki;
}

/**
 * The aggregation layer's PKI: a front-proxy CA of its own and the client certificate
 * (CN front-proxy-client) kube-apiserver presents to aggregated API servers. Asynchronous, so the
 * testbed makes it while etcd starts; P-256 keys take milliseconds where RSA takes ~0.3 s each.
 */
export async function addFrontProxy(dir: string, pki: Pki): Promise<void> {
  const ssl = (args: string[]) => runAsync('openssl', args, { cwd: dir });
  await ssl(EC_KEY('front-proxy-ca.key'));
  await ssl([
    'req',
    '-x509',
    '-new',
    '-key',
    'front-proxy-ca.key',
    '-subj',
    '/CN=kttl-testbed-front-proxy-ca',
    '-days',
    '30',
    '-out',
    'front-proxy-ca.crt',
  ]);
  writeFileSync(
    join(dir, 'front-proxy-client.ext'),
    'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n',
  );
  await ssl(EC_KEY('front-proxy-client.key'));
  await ssl([
    'req',
    '-new',
    '-key',
    'front-proxy-client.key',
    '-subj',
    '/CN=front-proxy-client',
    '-out',
    'front-proxy-client.csr',
  ]);
  await ssl([
    'x509',
    '-req',
    '-in',
    'front-proxy-client.csr',
    '-CA',
    'front-proxy-ca.crt',
    '-CAkey',
    'front-proxy-ca.key',
    '-CAcreateserial',
    '-days',
    '30',
    '-out',
    'front-proxy-client.crt',
    '-extfile',
    'front-proxy-client.ext',
  ]);
  pki.frontProxyCaCert = join(dir, 'front-proxy-ca.crt');
  pki.frontProxyCaKey = join(dir, 'front-proxy-ca.key');
  pki.proxyClientCert = join(dir, 'front-proxy-client.crt');
  pki.proxyClientKey = join(dir, 'front-proxy-client.key');
}
