// node --test --test-global-setup: one real control plane for the whole integration run. Test files
// (separate processes) reach it through KTTL_TESTBED_STATE.
import { writeFileSync } from 'node:fs';
import { setUpIdentities } from './identities.ts';
import { Testbed } from './testbed.ts';

let testbed: Testbed | undefined;

export async function globalSetup(): Promise<void> {
  const started = Date.now();
  testbed = await Testbed.start();
  await setUpIdentities(testbed);
  process.env.KTTL_TESTBED_STATE = testbed.stateFile;
  // hack/test kills these pids if the runner itself dies before globalTeardown.
  if (process.env.KTTL_TESTBED_PIDFILE) {
    writeFileSync(process.env.KTTL_TESTBED_PIDFILE, `${Object.values(testbed.state.pids).join('\n')}\n`);
  }
  console.error(
    `[testbed] control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${testbed.state.server} (state ${testbed.stateFile})`,
  );
}

export async function globalTeardown(): Promise<void> {
  if (!testbed) return;
  // Tests may have restarted components: read the pids they recorded last.
  const latest = Testbed.attach(testbed.stateFile);
  await latest.stop();
  console.error('[testbed] control plane stopped');
}
