// Starts the testbed and keeps it up until Ctrl-C / SIGTERM; prints how to reach it.
//   node hack/testbed/up.ts [--native-ttl] [--state-link PATH]
import { rmSync, symlinkSync } from 'node:fs';
import { setUpIdentities } from '../../test/testbed/identities.ts';
import { BASE_CONTROLLERS, NATIVE_TTL_CONTROLLER, Testbed } from '../../test/testbed/testbed.ts';

const args = process.argv.slice(2);
const controllers = args.includes('--native-ttl')
  ? [...BASE_CONTROLLERS, NATIVE_TTL_CONTROLLER]
  : [...BASE_CONTROLLERS];
const started = Date.now();
const tb = await Testbed.start({ controllers });
// kttl's least-privilege identities, so test files can run against this testbed too.
await setUpIdentities(tb);
const link = args[args.indexOf('--state-link') + 1];
if (args.includes('--state-link') && link) {
  rmSync(link, { force: true });
  symlinkSync(tb.stateFile, link);
}
console.log(`testbed up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`  export KUBECONFIG=${tb.kubeconfigPath}`);
console.log(`  kubectl: ${tb.bins.kubectl}`);
console.log(`  state: ${tb.stateFile}  (tests: KTTL_TESTBED_STATE=${tb.stateFile} node --test …)`);
console.log(`  kttl's least-privilege kubeconfig: ${tb.state.identities?.controller}`);
const stop = async () => {
  await Testbed.attach(tb.stateFile).stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
