/** Runs Python snippets with the project venv, so tests can check our files with independent readers. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// This file runs as dist/test/support/python.js; the repo root is three levels up.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The interpreter: `$PYTHON` when set, else the venv made by `.ci/python-venv.sh`. */
export const PYTHON = process.env.PYTHON ?? `${REPO_ROOT}.venv/bin/python`;

/**
 * Runs `code` (as `python -c code ...args`, so `sys.argv[1:]` is `args`) and resolves with its
 * stdout. Rejects with the exit status and stderr when Python fails.
 */
export function runPython(code: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => reject(new Error(`cannot run ${PYTHON}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(Buffer.concat(stdout).toString('utf8'));
        return;
      }
      const reason = signal ? `signal ${signal}` : `exit code ${code}`;
      reject(new Error(`python failed (${reason}):\n${Buffer.concat(stderr).toString('utf8')}`));
    });
  });
}
