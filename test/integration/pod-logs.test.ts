// Pod logs on the testbed come through the API server's real pods/log path: the API server looks up
// the pod's node, connects to the kubelet endpoint the node advertises (kwok's server, TLS with a
// cert our CA signed) and streams /containerLogs, which kwok reads from the file a Logs/ClusterLogs
// object names (test/testbed/pod-logs.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deleteNamespaceLogs, setNamespaceLogs, setPodLogs, writeContainerLog } from '../testbed/pod-logs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { type Clients, clientsFor, newNamespace, TEST_LABELS, useTestbed, waitFor } from '../testbed/use.ts';

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} line ${i + 1}`);

describe('pod logs through the API server (kwok kubelet server)', () => {
  let tb: Testbed;
  let c: Clients;
  let ns: string;
  const clusterLogs: string[] = [];

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    ns = await newNamespace(c, 'podlogs');
  });
  after(async () => {
    for (const name of clusterLogs) await deleteNamespaceLogs(tb, name);
  });

  async function runningPod(name: string, withInit = false): Promise<void> {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name, labels: { [TEST_LABELS.run]: 'true' } },
        spec: {
          initContainers: withInit ? [{ name: 'setup', image: 'busybox' }] : undefined,
          containers: [
            { name: 'main', image: 'busybox' },
            { name: 'side', image: 'busybox' },
          ],
        },
      },
    });
    await waitFor(
      `pod ${name} Running`,
      async () => (await c.core.readNamespacedPod({ name, namespace: ns })).status?.phase === 'Running',
      30_000,
      100,
    );
  }

  /** kwok sees a new Logs/ClusterLogs object through its watch: retry until it answers. */
  async function logsOf(args: string[]): Promise<string> {
    let out = '';
    await waitFor(
      `kubectl logs ${args.join(' ')}`,
      async () => {
        try {
          out = await tb.kubectl(['logs', '-n', ns, ...args]);
          return true;
        } catch {
          return false;
        }
      },
      15_000,
      200,
    );
    return out;
  }

  test('the fake nodes advertise kwok as their kubelet endpoint', async () => {
    // Raw JSON: the API's field is `Port` (capitalised), which client-node's model does not map.
    const node = JSON.parse(await tb.rawGet('/api/v1/nodes/kwok-node-0')) as {
      status: {
        daemonEndpoints: { kubeletEndpoint: { Port: number } };
        addresses: { type: string; address: string }[];
      };
    };
    assert.equal(node.status.daemonEndpoints.kubeletEndpoint.Port, tb.state.ports.kwok);
    assert.deepEqual(
      node.status.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address),
      ['127.0.0.1'],
    );
  });

  test('kubectl logs returns a container file given by a ClusterLogs, with --tail and --limit-bytes', async () => {
    const main = writeContainerLog(tb, lines('main', 50));
    const side = writeContainerLog(tb, lines('side', 5), 'stderr');
    clusterLogs.push(await setNamespaceLogs(tb, ns, { main, side }));
    await runningPod('p1');

    assert.equal(await logsOf(['p1', '-c', 'main']), `${lines('main', 50).join('\n')}\n`);
    assert.equal(await logsOf(['p1', '-c', 'side']), `${lines('side', 5).join('\n')}\n`, 'stderr lines too');
    assert.equal(
      await logsOf(['p1', '-c', 'main', '--tail=3']),
      'main line 48\nmain line 49\nmain line 50\n',
    );
    // The kubelet's reader stops after limitBytes bytes of the selected lines.
    assert.equal(await logsOf(['p1', '-c', 'main', '--tail=2', '--limit-bytes=15']), 'main line 49\nma');
  });

  test('the raw pods/log GET with container, tailLines and limitBytes', async () => {
    const path = `/api/v1/namespaces/${ns}/pods/p1/log?container=main&tailLines=4&limitBytes=1000`;
    let body = '';
    await waitFor(
      'pods/log answers',
      async () => {
        body = await tb.rawGet(path);
        return body.startsWith('main');
      },
      15_000,
      200,
    );
    assert.equal(body, 'main line 47\nmain line 48\nmain line 49\nmain line 50\n');
  });

  test('a Logs object for one pod wins over the namespace ClusterLogs; init containers have logs too', async () => {
    const own = writeContainerLog(tb, ['only p2']);
    const init = writeContainerLog(tb, ['init ran', 'init done']);
    await runningPod('p2', true);
    await setPodLogs(tb, ns, 'p2', { main: own, setup: init });
    await waitFor(
      'p2 main has its own log',
      async () => (await logsOf(['p2', '-c', 'main'])) === 'only p2\n',
      15_000,
      200,
    );
    assert.equal(await logsOf(['p2', '-c', 'setup']), 'init ran\ninit done\n');
    // The Logs object names no file for `side` (and it takes precedence): kwok's own error comes
    // back through the API server.
    await assert.rejects(
      tb.kubectl(['logs', '-n', ns, 'p2', '-c', 'side']),
      /log target not found for container "side"/,
    );
  });

  test('a pod with no logs configured: the API server relays kwok refusal', async () => {
    const other = await newNamespace(c, 'podlogs');
    await c.core.createNamespacedPod({
      namespace: other,
      body: {
        metadata: { name: 'silent', labels: { [TEST_LABELS.run]: 'true' } },
        spec: { containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitFor(
      'pod silent Running',
      async () =>
        (await c.core.readNamespacedPod({ name: 'silent', namespace: other })).status?.phase === 'Running',
      30_000,
      100,
    );
    await assert.rejects(tb.kubectl(['logs', '-n', other, 'silent']), /no logs found for container "main"/);
  });
});
