// A real PostgreSQL server for the archive's tests, from Debian's packages (hack/setup installs
// `postgresql`): initdb + pg_ctl on a free port on 127.0.0.1, data under a temp dir the
// `postgres` user owns (initdb and the server refuse to run as root). Started on demand by the test
// files that need it (about a second), stopped with `pg_ctl -m fast` at teardown. stop()/start()
// in between take it away and bring it back with its data (a database outage mid-test); crash()
// stops it the way a power cut would (`-m immediate`: no shutdown checkpoint, WAL replay at start).
import { execFile, execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { issueServingCert, makePki, type Pki } from './certs.ts';
import { freePort } from './processes.ts';

const run = promisify(execFile);
const SUPERUSER = 'kttl';

/** The directory of initdb/pg_ctl: PG_BIN, else the newest /usr/lib/postgresql/N/bin, else PATH. */
export function postgresBinDir(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

export function postgresAvailable(): boolean {
  const dir = postgresBinDir();
  if (dir) return true;
  try {
    execFileSync('pg_ctl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Account {
  uid: number;
  gid: number;
  name: string;
}

/** Root runs the server as `postgres` (runuser); anyone else runs it as themselves. */
function account(): Account | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const f = line?.split(':');
  if (!f?.[2] || !f[3])
    throw new Error(
      'testbed postgres: running as root needs the `postgres` user (Debian package postgresql)',
    );
  return { name: 'postgres', uid: Number(f[2]), gid: Number(f[3]) };
}

export interface PostgresOptions {
  /** Serve TLS with a certificate for 127.0.0.1/localhost signed by a CA of its own (`ca`). */
  tls?: boolean;
}

export class PostgresServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  readonly logFile: string;
  /** The CA that signed the server's certificate (with tls). */
  readonly ca: string | undefined;
  readonly #as: Account | undefined;
  readonly #bin: (tool: string) => string;
  readonly #options: string;

  private constructor(
    dir: string,
    port: number,
    as: Account | undefined,
    ca: string | undefined,
    tlsOpts: string,
  ) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.port = port;
    this.logFile = join(dir, 'postgres.log');
    this.ca = ca;
    this.#as = as;
    const bin = postgresBinDir();
    this.#bin = (tool) => (bin ? join(bin, tool) : tool);
    // -k: the UNIX socket in our dir (the default /var/run/postgresql may not exist or be ours).
    this.#options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50${tlsOpts}`;
  }

  static async start(o: PostgresOptions = {}): Promise<PostgresServer> {
    const as = account();
    const dir = mkdtempSync(join(tmpdir(), 'kttl-pg-'));
    let ca: string | undefined;
    let tlsOpts = '';
    if (o.tls) {
      const pki: Pki = makePki(dir);
      const serving = issueServingCert(
        dir,
        pki,
        'postgres-server',
        '127.0.0.1',
        'IP:127.0.0.1,DNS:localhost',
      );
      ca = pki.caCert;
      tlsOpts = ` -c ssl=on -c ssl_cert_file=${serving.cert} -c ssl_key_file=${serving.key}`;
    }
    if (as) {
      // The server reads its key (0600, its own) and writes under dir.
      for (const f of [dir, ...readdirSync(dir).map((f) => join(dir, f))]) chownSync(f, as.uid, as.gid);
    }
    const server = new PostgresServer(dir, await freePort(), as, ca, tlsOpts);
    const pwfile = join(dir, 'pw');
    writeFileSync(pwfile, 'unused\n');
    if (as) chownSync(pwfile, as.uid, as.gid);
    await server.#run('initdb', [
      '-D',
      server.dataDir,
      '-U',
      SUPERUSER,
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await server.start();
    // A test process that ends without destroy() (a failed before-hook, an uncaught error) still
    // takes its server down: SIGINT is the postmaster's fast shutdown.
    process.once('exit', () => {
      const pid = server.pid();
      if (pid) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {}
      }
    });
    return server;
  }

  /** A DSN for `database` (default the initial `postgres` database). */
  dsn(database = 'postgres', params = ''): string {
    return `postgres://${SUPERUSER}@127.0.0.1:${this.port}/${database}${params ? `?${params}` : ''}`;
  }

  /** A fresh empty database; its DSN. */
  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.dsn() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
    } finally {
      await c.end();
    }
    return this.dsn(name);
  }

  async start(): Promise<void> {
    await this.#run('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-o',
      this.#options,
      '-w',
      '-t',
      '60',
      'start',
    ]);
    // hack/test kills the pids in this file if the test run itself dies before its teardown.
    const pid = this.pid();
    if (pid && process.env.KTTL_TESTBED_PIDFILE) appendFileSync(process.env.KTTL_TESTBED_PIDFILE, `${pid}\n`);
  }

  /** A clean stop: connections are closed, the data stays for start(). */
  async stop(): Promise<void> {
    if (!this.running()) return;
    await this.#run('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']);
  }

  /** Stops with no shutdown checkpoint, as if the machine died; start() replays the WAL. */
  async crash(): Promise<void> {
    if (!this.running()) return;
    await this.#run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  running(): boolean {
    return existsSync(join(this.dataDir, 'postmaster.pid'));
  }

  /** The postmaster's pid (from postmaster.pid), undefined when stopped. */
  pid(): number | undefined {
    try {
      return Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async #run(tool: string, args: string[]): Promise<void> {
    const bin = this.#bin(tool);
    const [cmd, argv] = this.#as ? ['runuser', ['-u', this.#as.name, '--', bin, ...args]] : [bin, args];
    try {
      await run(cmd, argv, { cwd: this.dir, timeout: 120_000 });
    } catch (err) {
      let log = '';
      try {
        log = readFileSync(this.logFile, 'utf8').slice(-2000);
      } catch {}
      throw new Error(
        `testbed postgres: ${tool} ${args.join(' ')} failed: ${(err as Error).message}\n${log}`,
      );
    }
  }
}
