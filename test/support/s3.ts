/**
 * An S3-compatible server for the artifact suites: moto's server mode from `test/.venv-s3`
 * (`.ci/run` builds it from test/support/requirements-s3.txt), started on a free loopback port
 * and stopped after the suite. `SLIPWAY_TEST_S3_ENDPOINT` names a running server to use instead.
 * Outside CI a missing venv skips the S3 suites with the reason; in CI it is an error.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

// The SDK warns once per process that its releases from 2027 on need Node 22; that is for the
// product's notes, not each test run's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const S3_VENV = fileURLToPath(new URL('../../../test/.venv-s3', import.meta.url));

/** moto accepts any credentials unless it enforces auth. */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'slipway-test', secretAccessKey: 'slipway-test-secret' };

export interface S3Server {
  endpoint: string;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /**
   * Checks every request's credentials against moto's IAM, where no user exists: any key is
   * refused as an unknown access key. Needs a server of our own.
   */
  enforceAuth?: boolean;
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server | { skip: string }> {
  const external = process.env.SLIPWAY_TEST_S3_ENDPOINT;
  if (external && !options.enforceAuth)
    return { endpoint: external.replace(/\/+$/, ''), stop: async () => {} };
  const bin = `${S3_VENV}/bin/moto_server`;
  if (!existsSync(bin)) {
    const how =
      'python3.11 -m venv test/.venv-s3 && test/.venv-s3/bin/pip install -r test/support/requirements-s3.txt';
    if (process.env.CI) throw new Error(`${bin} is missing in CI; .ci/run builds it (${how})`);
    return {
      skip: `no S3-compatible server: ${bin} is missing (${how}) and SLIPWAY_TEST_S3_ENDPOINT is unset`,
    };
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  if (options.enforceAuth) env.INITIAL_NO_AUTH_ACTION_COUNT = '0';
  // Port 0: the server picks a free port and prints it, so no other process can take it first.
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let log = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('moto_server printed no address within 30 s')), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${log}`));
    };
    const onData = (c: Buffer) => {
      // Keep the tail only: moto logs every request.
      log = (log + c.toString()).slice(-8192);
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`moto_server exited with ${code}`)));
  });
  await waitUntilAnswering(endpoint, child);
  return {
    endpoint,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      return;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server at ${endpoint} does not answer: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A client for the test server, for what the store under test does not do (buckets, listing). */
export function s3TestClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_TEST_CREDENTIALS,
    // Quiet: the SDK console.warns about failed uploads, which some tests provoke.
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

let buckets = 0;

/** Creates a bucket with a fresh name on the server and returns the name. */
export async function createTestBucket(client: S3Client): Promise<string> {
  const name = `slipway-test-${process.pid}-${++buckets}-${Date.now().toString(36)}`;
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
