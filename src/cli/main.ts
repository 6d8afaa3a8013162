import { Command, Option } from 'commander';
import { startApp, VERSION } from '../app.js';
import { loadSettings } from '../config/index.js';
import { runDemo } from './demo.js';
import { closeOnSignals } from './signals.js';

interface ServeFlags {
  models?: string;
  host?: string;
  port?: string;
  grpcPort?: string;
  grpc?: boolean;
  config?: string;
  logLevel?: string;
}

export function serveSettings(flags: ServeFlags) {
  return loadSettings({
    env: process.env,
    configFile: flags.config,
    flags: {
      models: flags.models,
      host: flags.host,
      port: flags.port,
      grpcPort: flags.grpc === false ? 'off' : flags.grpcPort,
      logLevel: flags.logLevel,
    },
  });
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('slipway')
    .description('Serve ONNX models over the Open Inference Protocol (REST and gRPC).')
    .version(VERSION);

  program
    .command('serve')
    .description('Serve a model repository: <dir>/<model>/<version>/model.onnx (+ <dir>/<model>/config.json)')
    .option('-m, --models <dir>', 'model repository folder (SLIPWAY_MODELS; default ./models)')
    .option('--host <host>', 'interface to listen on (SLIPWAY_HOST; default 127.0.0.1)')
    .option('-p, --port <port>', 'REST port, 0 for any free one (SLIPWAY_PORT; default 8080)')
    .option('--grpc-port <port>', 'gRPC port, 0 for any free one (SLIPWAY_GRPC_PORT; default 8081)')
    .option('--no-grpc', 'do not serve gRPC')
    .option('-c, --config <file>', 'JSON settings file (SLIPWAY_CONFIG)')
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
    .action(async (flags: ServeFlags) => {
      const app = await startApp(serveSettings(flags));
      closeOnSignals(app);
      const index = await app.plane.repositoryIndex(false);
      const ready = index.filter((e) => e.state === 'READY').length;
      process.stdout.write(
        `Slipway ${VERSION} serving ${ready} model version(s) from ${app.settings.models}\n` +
          `  REST  ${app.http.url}\n` +
          (app.grpc ? `  gRPC  ${app.settings.host}:${app.grpc.port}\n` : ''),
      );
      for (const e of index.filter((x) => x.state !== 'READY')) {
        process.stdout.write(`  ! ${e.name}${e.version ? ` v${e.version}` : ''} ${e.state}: ${e.reason}\n`);
      }
    });

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

  await program.parseAsync(argv);
}
