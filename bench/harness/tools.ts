/**
 * Finds or installs what the serving benchmark runs: wrk (Debian), ghz (Go module proxy, into
 * bench/.bin), MLServer's venv (PyPI, bench/.venv-mlserver) and its joblib model. What cannot be
 * installed here is reported with the exact command, and the cases needing it are skipped.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const GHZ_VERSION = 'v0.120.0';
export const GHZ_MODULE = 'github.com/bojand/ghz/cmd/ghz';

export interface Tools {
  wrk?: string;
  ghz?: string;
  /** The `mlserver` executable inside bench/.venv-mlserver. */
  mlserver?: string;
  taskset?: string;
  /** Why a tool is missing, with the command that installs it. */
  missing: string[];
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

/** Runs a command with its output on stderr; true when it exits 0. */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): boolean {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 2, 2], env: opts.env ?? process.env, cwd: opts.cwd });
  return r.status === 0;
}

function ensureWrk(tools: Tools): void {
  tools.wrk = which('wrk');
  if (tools.wrk) return;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && which('apt-get')) {
    if (run('apt-get', ['update', '-qq']) && run('apt-get', ['install', '-y', '-qq', 'wrk']))
      tools.wrk = which('wrk');
  }
  if (!tools.wrk) tools.missing.push('wrk: sudo apt-get update && sudo apt-get install -y wrk');
}

function ensureGhz(tools: Tools, root: string): void {
  const bin = join(root, 'bench', '.bin');
  const ghz = join(bin, 'ghz');
  const command = `GOBIN=${bin} go install ${GHZ_MODULE}@${GHZ_VERSION}`;
  if (!existsSync(ghz) && which('go')) {
    run('go', ['install', `${GHZ_MODULE}@${GHZ_VERSION}`], { env: { ...process.env, GOBIN: bin } });
  }
  if (existsSync(ghz)) tools.ghz = ghz;
  else tools.missing.push(`ghz (the gRPC case is skipped): ${command}`);
}

/**
 * bench/.venv-mlserver, rebuilt when bench/requirements-mlserver.txt changes (its hash is kept
 * in the venv), then the joblib that MLServer loads, refitted when the training script changes.
 */
function ensureMlserver(tools: Tools, root: string): void {
  const venv = join(root, 'bench', '.venv-mlserver');
  const requirements = join(root, 'bench', 'requirements-mlserver.txt');
  const train = join(root, 'bench', 'models', 'train_logreg30.py');
  const joblib = join(root, 'bench', 'mlserver', 'logreg30', 'model.joblib');
  const python = process.env.SLIPWAY_PYTHON ?? (which('python3.11') ? 'python3.11' : 'python3');
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stamp = join(venv, '.slipway-hash');
  const commands =
    `${python} -m venv ${venv} && ${venv}/bin/pip install -r ${requirements} && ` +
    `${venv}/bin/python ${train} --joblib-only`;

  const current = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (current !== want) {
    log(`creating ${venv} (MLServer, a few minutes the first time)`);
    const ok =
      run(python, ['-m', 'venv', '--clear', venv]) &&
      run(join(venv, 'bin', 'pip'), ['install', '-q', '--upgrade', 'pip']) &&
      run(join(venv, 'bin', 'pip'), ['install', '-q', '-r', requirements]);
    if (!ok) {
      tools.missing.push(`MLServer (its case is skipped): ${commands}`);
      return;
    }
    writeFileSync(stamp, `${want}\n`);
  }
  const stale = !existsSync(joblib) || statSync(joblib).mtimeMs < statSync(train).mtimeMs;
  if (stale && !run(join(venv, 'bin', 'python'), [train, '--joblib-only'])) {
    tools.missing.push(`MLServer's model (its case is skipped): ${venv}/bin/python ${train} --joblib-only`);
    return;
  }
  tools.mlserver = join(venv, 'bin', 'mlserver');
}

export function ensureTools(root: string, need: { grpc: boolean; mlserver: boolean }): Tools {
  const tools: Tools = { missing: [] };
  ensureWrk(tools);
  if (need.grpc) ensureGhz(tools, root);
  if (need.mlserver) ensureMlserver(tools, root);
  tools.taskset = which('taskset');
  if (!tools.taskset)
    tools.missing.push('taskset (the load generator runs unpinned): sudo apt-get install -y util-linux');
  return tools;
}

/** First line of `<tool> --version`-style output, for the report. */
export function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
}
