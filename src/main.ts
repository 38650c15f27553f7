#!/usr/bin/env node
// Entry point of the `kttl` binary: parse, run, map failures to exit codes (0 / 1 user / 2 API).
import { CommanderError } from 'commander';
import { describeFailure, EXIT_USER } from './cli/errors.ts';
import { buildProgram, programName } from './cli/program.ts';

async function main(): Promise<void> {
  const program = buildProgram(process.env, programName(process.argv[1]));
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USER;
      return;
    }
    const { code, line } = describeFailure(err);
    process.stderr.write(`${line}\n`);
    process.exitCode = code;
  }
}

// No top-level await: the single executable (scripts/build.ts --sea) runs this as CommonJS.
void main();
