#!/usr/bin/env node
// The project's test command (`npm test`, run by .ci/run): the formatter's check, lint
// (module boundaries included) and typecheck through Nx, then every vitest project. Ends with the line
// "N passed, N failed" and exits non-zero if anything failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', FORCE_COLOR: '0' };
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', env }).status ?? 1;

let failedChecks = 0;
// One formatter (Prettier, width 120; .prettierignore says what it leaves alone): an
// unformatted file fails the run like a lint error. `npm run format` fixes it.
console.log('\n== prettier --check .');
if (run('npx', ['prettier', '--check', '--log-level=warn', '.']) !== 0) {
  console.log('format FAILED (run npm run format)');
  failedChecks++;
}
for (const target of ['lint', 'typecheck']) {
  console.log(`\n== nx run-many -t ${target}`);
  if (run('npx', ['nx', 'run-many', '-t', target, '--outputStyle=static']) !== 0) {
    console.log(`${target} FAILED`);
    failedChecks++;
  }
}

console.log('\n== vitest run');
const report = '.vitest-results.json';
rmSync(report, { force: true });
const vitestCode = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
]);

let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  // A test file that failed to load has no test results but must count as a failure.
  for (const file of r.testResults ?? [])
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed++;
} else {
  failed = 1;
}
if (vitestCode !== 0 && failed === 0) failed = 1;
failed += failedChecks;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
