import { Command, Option } from 'commander';
import { VERSION } from '../app.js';
import { loadSettings } from '../config/index.js';
import { registerDataCommands } from './data.js';
import { runDemo } from './demo.js';
import { registerDriftCommand } from './drift.js';
import { registerModelCommands } from './models.js';
import { registerMonitorCommands } from './monitor.js';
import { serve } from './serve.js';
import { settle } from './settle.js';
import { addStoreOptions, type StoreFlags, storeFlagSettings } from './store-flags.js';
import { registerTokenCommands } from './tokens.js';

interface ServeFlags extends StoreFlags {
  models?: string;
  auth?: string;
  insecure?: boolean;
  allowClientShm?: boolean;
  servingAlias?: string;
  host?: string;
  port?: string;
  grpcPort?: string;
  grpc?: boolean;
  workers?: string;
  config?: string;
  logLevel?: string;
  traceFile?: string;
  traceLevel?: string;
  traceRate?: string;
  traceCount?: string;
  traceLogFrequency?: string;
  responseCacheBytes?: string;
}

export function serveSettings(flags: ServeFlags) {
  return loadSettings({
    env: process.env,
    configFile: flags.config,
    flags: {
      models: flags.models,
      ...storeFlagSettings(flags),
      auth: flags.auth,
      insecure: flags.insecure ? true : undefined,
      allowClientShm: flags.allowClientShm ? true : undefined,
      servingAlias: flags.servingAlias,
      host: flags.host,
      port: flags.port,
      grpcPort: flags.grpc === false ? 'off' : flags.grpcPort,
      workers: flags.workers,
      logLevel: flags.logLevel,
      traceFile: flags.traceFile,
      traceLevel: flags.traceLevel,
      traceRate: flags.traceRate,
      traceCount: flags.traceCount,
      traceLogFrequency: flags.traceLogFrequency,
      responseCacheBytes: flags.responseCacheBytes,
    },
  });
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('slipway')
    .description(
      'Serve ONNX models over the Open Inference Protocol (REST and gRPC), with a model registry and an MLflow-compatible tracking server.',
    )
    .version(VERSION)
    // Program options only before the command, so `models show <name> --version 2` is the command's.
    .enablePositionalOptions();

  addStoreOptions(program.command('serve'))
    .description(
      "Serve the registry's models (the version each one's serving alias names) and/or a model repository folder, plus the registry and MLflow APIs",
    )
    .option(
      '-m, --models <dir>',
      'also serve a repository folder <dir>/<model>/<version>/model.onnx (SLIPWAY_MODELS)',
    )
    .option(
      '--serving-alias <alias>',
      'alias /v2/models/{name} serves (SLIPWAY_SERVING_ALIAS; default champion)',
    )
    .addOption(
      new Option('--auth <mode>', 'token: API tokens required (SLIPWAY_AUTH; default none)').choices([
        'none',
        'token',
      ]),
    )
    .option('--insecure', 'allow a non-loopback --host without auth (SLIPWAY_INSECURE)')
    .option(
      '--allow-client-shm',
      'let clients on this host register system shared memory for tensors (SLIPWAY_ALLOW_CLIENT_SHM)',
    )
    .option('--host <host>', 'interface to listen on (SLIPWAY_HOST; default 127.0.0.1)')
    .option('-p, --port <port>', 'REST port, 0 for any free one (SLIPWAY_PORT; default 8080)')
    .option('--grpc-port <port>', 'gRPC port, 0 for any free one (SLIPWAY_GRPC_PORT; default 8081)')
    .option('--no-grpc', 'do not serve gRPC')
    .option(
      '--workers <n>',
      'serving processes sharing the ports, or auto for one per CPU (SLIPWAY_WORKERS; default 1)',
    )
    .addOption(
      new Option('--log-level <level>', 'log level (SLIPWAY_LOG_LEVEL; default info)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .option('--trace-file <path>', "file Triton's trace extension writes traces to (SLIPWAY_TRACE_FILE)")
    .option(
      '--trace-level <levels>',
      'OFF, TIMESTAMPS, TENSORS or TIMESTAMPS,TENSORS (SLIPWAY_TRACE_LEVEL; default OFF; changeable at run time)',
    )
    .option('--trace-rate <n>', 'trace one request in n (SLIPWAY_TRACE_RATE; default 1000)')
    .option('--trace-count <n>', 'traces to take, -1 for no limit (SLIPWAY_TRACE_COUNT; default -1)')
    .option(
      '--trace-log-frequency <n>',
      'write every n traces to <file>.<i>; 0 writes all to <file> at shutdown (SLIPWAY_TRACE_LOG_FREQUENCY; default 0)',
    )
    .option(
      '--response-cache-bytes <n>',
      'size of the response cache for models with response_cache.enable (SLIPWAY_RESPONSE_CACHE_BYTES; default 0: off)',
    )
    .action((flags: ServeFlags) => serve(serveSettings(flags)));

  program
    .command('demo')
    .description(
      'Serve the bundled Adult-income model, print ready-to-paste requests and send a little traffic',
    )
    .option('-p, --port <port>', 'REST port (default 8080, or any free one if taken)')
    .option('--grpc-port <port>', 'gRPC port (default 8081, or any free one if taken)')
    .option('--exit', 'stop after the traffic instead of serving until Ctrl-C')
    .action(async (flags: { port?: string; grpcPort?: string; exit?: boolean }) => {
      await runDemo(flags);
    });

  registerTokenCommands(program);
  registerModelCommands(program);
  registerDataCommands(program);
  registerDriftCommand(program);
  registerMonitorCommands(program);

  await program.parseAsync(argv);
  await settle();
}
