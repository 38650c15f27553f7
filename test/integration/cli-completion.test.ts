// `kttl completion` and every command's --help.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process (the completion script is run by bash).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { assertError, kttl, ok, useCliTestbed } from '../testbed/cli.ts';
import type { Testbed } from '../testbed/testbed.ts';

let tb: Testbed;

before(async () => {
  ({ tb } = await useCliTestbed());
});

describe('kttl completion and help', () => {
  test('completion bash: a valid script that completes commands and flags', async () => {
    const r = ok(await kttl(['completion', 'bash'], { kubeconfig: null }));
    assert.match(r.stdout, /complete -F _kttl kttl$/m);
    execFileSync('bash', ['-n'], { input: r.stdout }); // syntax check
    const script = join(tb.state.dir, `kttl-completion-${process.pid}.bash`);
    writeFileSync(script, r.stdout);
    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source "${script}"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _kttl; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: 'utf8' },
      ).trim();
    assert.equal(complete(['kttl', 'del']), 'delete');
    assert.deepEqual(complete(['kttl', 'delete', '--f']).split(' ').sort(), ['--finished', '--force']);
    assert.equal(complete(['kttl', 'list', '-o', 'ya']), 'yaml');
    assert.equal(complete(['kttl', 'set-ttl', 'job/x', '1h', '--outcome', 'f']), 'failed');
    assert.ok(complete(['kttl', '']).split(' ').includes('explain'));
    assertError(
      await kttl(['completion', 'fish'], { kubeconfig: null }),
      1,
      'error: unsupported shell "fish" (supported: bash)',
    );
  });

  test('every command has --help with examples (exit 0)', async () => {
    for (const cmd of ['list', 'explain', 'set-ttl', 'delete', 'submit', 'plan', 'completion']) {
      const r = await kttl([cmd, '--help'], { kubeconfig: null });
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`^Usage: kttl ${cmd}[ |]`), cmd);
      assert.match(r.stdout, /\nExamples:\n {2}.*kttl /, `${cmd} has examples`);
    }
  });
});
