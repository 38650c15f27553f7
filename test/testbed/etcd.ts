// The testbed's etcd through its v3 JSON gateway (http on the client port), for tests that act
// behind the API server's back: compaction, to provoke 410 Gone and expired continue tokens; and
// etcd's death and restart (test/integration/faults-etcd.test.ts).
import { sleep, stopPid } from './processes.ts';
import type { Testbed } from './testbed.ts';

export async function etcdPost(
  tb: Testbed,
  path: string,
  body: object,
): Promise<{ header?: { revision?: string } }> {
  const res = await fetch(`http://127.0.0.1:${tb.state.ports.etcdClient}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`etcd ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Compacts etcd at its current revision (physically): every older resourceVersion is gone. */
export async function compactEtcd(tb: Testbed): Promise<string> {
  const rev = (await etcdPost(tb, '/v3/kv/range', { key: Buffer.from('/').toString('base64') })).header
    ?.revision;
  if (!rev) throw new Error('etcd: no revision');
  await etcdPost(tb, '/v3/kv/compaction', { revision: rev, physical: true });
  return rev;
}

/**
 * Kills etcd (SIGKILL: no goodbye to the API server) and, after `downMs`, starts it again on the
 * same data directory; the API server answers 5xx or times out meanwhile. Resolves once etcd is
 * healthy again.
 */
export async function killAndRestartEtcd(tb: Testbed, downMs: number): Promise<void> {
  const pid = tb.state.pids.etcd;
  if (pid) await stopPid(pid, 5000, 'SIGKILL');
  delete tb.state.pids.etcd;
  tb.save();
  await sleep(downMs);
  await tb.startEtcd();
  // The run's teardown stops the pids recorded last (test/testbed/global-setup.ts).
  tb.save();
}
