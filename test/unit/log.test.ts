// The logger facade: messages below the level never load winston; those that pass go to stderr, as text or JSON lines.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LOG_MODULE = fileURLToPath(new URL('../../src/log.js', import.meta.url));

/** Runs a snippet in a fresh node with `log` and `configureLog` imported; returns its stdout and stderr. */
function runWithLog(code: string): { stdout: string; stderr: string } {
  const script = `import { log, configureLog } from ${JSON.stringify(LOG_MODULE)};\nimport { createRequire } from 'node:module';\n` +
    `const winstonLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/winston/'));\n${code}`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(result.status, result.stderr).to.equal(0);
  return { stdout: result.stdout, stderr: result.stderr };
}

describe('log', () => {
  it('does not load winston, nor write anything, for messages below the level', () => {
    const { stdout, stderr } = runWithLog("log.info('hidden'); log.debug('hidden'); console.log(winstonLoaded());");
    expect(stdout.trim()).to.equal('false');
    expect(stderr).to.equal('');
  });

  it('writes messages that pass the level to stderr, in the human format', () => {
    const { stdout, stderr } = runWithLog("log.warn('careful'); configureLog('info'); log.info('now shown'); log.debug('not yet');");
    expect(stdout).to.equal('');
    expect(stderr).to.equal('volmerge warn: careful\nvolmerge info: now shown\n');
  });

  it('writes JSON lines with the fields and a timestamp for the agent, and nothing when silenced', () => {
    const { stderr } = runWithLog("configureLog('info', true); log.info('queued', { job: 'j1' }); log.silent = true; log.error('dropped');");
    const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 'info', message: 'queued', job: 'j1' });
    expect(lines[0]).to.have.property('timestamp');
  });
});
