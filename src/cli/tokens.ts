import type { Command } from 'commander';
import { openStore } from '../app.js';
import { MAX_TOKEN_DAYS, TokenStore } from '../auth/index.js';
import { parseDecimal } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import { addStoreOptions, cliActor, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

/** `slipway tokens create|list|revoke`: API tokens, straight on the store (no server needed). */
export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('Create, list and revoke API tokens');

  addStoreOptions(
    tokens
      .command('create')
      .description('Create a token; it is printed once and stored only as a hash')
      .requiredOption('--name <name>', 'who or what uses it (recorded as the actor in the audit log)')
      .option('--scope <scopes>', 'comma-separated: read, predict, write, admin', 'read')
      .option('--expires-in-days <days>', 'expiry'),
  ).action((flags: StoreFlags & { name: string; scope: string; expiresInDays?: string }) =>
    runCommand(async () => {
      const store = await openStore(storeSettings(flags));
      try {
        const { token, info } = await new TokenStore(store.db).create(
          {
            name: flags.name,
            scopes: flags.scope.split(',').map((s) => s.trim()),
            ...(flags.expiresInDays === undefined ? {} : { expiresInDays: daysFlag(flags.expiresInDays) }),
          },
          cliActor(),
        );
        process.stderr.write(
          `created token ${info.id} '${info.name}' with scopes ${info.scopes.join(', ')}\n`,
        );
        process.stdout.write(`${token}\n`);
      } finally {
        await store.close();
      }
    }),
  );

  addStoreOptions(tokens.command('list').description('List tokens (never their secrets)')).action(
    (flags: StoreFlags) =>
      runCommand(async () => {
        const store = await openStore(storeSettings(flags));
        try {
          const rows = await new TokenStore(store.db).list();
          const lines = [['ID', 'NAME', 'SCOPES', 'CREATED', 'STATE']];
          for (const t of rows) {
            const state = t.revokedMs
              ? 'revoked'
              : t.expiresMs && t.expiresMs < Date.now()
                ? 'expired'
                : 'active';
            lines.push([t.id, t.name, t.scopes.join(','), new Date(t.createdMs).toISOString(), state]);
          }
          const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
          for (const l of lines)
            process.stdout.write(
              `${l
                .map((c, i) => c.padEnd(widths[i]!))
                .join('  ')
                .trimEnd()}\n`,
            );
        } finally {
          await store.close();
        }
      }),
  );

  addStoreOptions(tokens.command('revoke').description('Revoke a token by id').argument('<id>')).action(
    (id: string, flags: StoreFlags) =>
      runCommand(async () => {
        const store = await openStore(storeSettings(flags));
        try {
          const t = await new TokenStore(store.db).revoke(id);
          process.stdout.write(`revoked token ${t.id} '${t.name}'\n`);
        } finally {
          await store.close();
        }
      }),
  );
}

/** `--expires-in-days` as a plain decimal number of days, above 0 and at most MAX_TOKEN_DAYS. */
function daysFlag(raw: string): number {
  const days = parseDecimal(raw);
  if (!(days > 0 && days <= MAX_TOKEN_DAYS)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `--expires-in-days must be a number of days above 0 and at most ${MAX_TOKEN_DAYS}, got '${raw}'`,
    );
  }
  return days;
}
