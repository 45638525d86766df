/** `inferq keys create|list|revoke`: tenant keys, through the API's admin routes (INFERQ_ADMIN_KEY). */
import type { CommandContext } from '../context.js';
import { formatTable } from '../context.js';
import { CliError, ExitCode } from '../errors.js';

interface KeyView {
  id: string;
  tenant: string;
  created_at: string;
}

function needAdminKey(ctx: CommandContext): void {
  if (!ctx.io.env.INFERQ_ADMIN_KEY) {
    throw new CliError('Set INFERQ_ADMIN_KEY to the API\'s admin key (its ADMIN_API_KEY) to manage keys.', ExitCode.usage);
  }
}

/** `inferq keys create <tenant>`: prints the new key once (it is stored only as a hash). */
export async function createKey(ctx: CommandContext, tenant: string, options: { json: boolean }): Promise<number> {
  needAdminKey(ctx);
  const created = await ctx.adminApi.json<KeyView & { key: string }>('POST', '/v1/admin/keys', { json: { tenant } });
  if (options.json) {
    ctx.out(JSON.stringify(created, null, 2));
    return ExitCode.ok;
  }
  ctx.out(created.key);
  ctx.err(`Key ${created.id} for tenant "${created.tenant}". It is shown only now: store it (e.g. INFERQ_API_KEY). Revoke it with \`inferq keys revoke ${created.id}\`.`);
  return ExitCode.ok;
}

/** `inferq keys list`: ids and tenants, never the keys. */
export async function listKeys(ctx: CommandContext, options: { json: boolean }): Promise<number> {
  needAdminKey(ctx);
  const { data } = await ctx.adminApi.json<{ data: KeyView[] }>('GET', '/v1/admin/keys');
  if (options.json) {
    ctx.out(JSON.stringify(data, null, 2));
    return ExitCode.ok;
  }
  if (data.length === 0) {
    ctx.out('No keys yet. Make one with `inferq keys create <tenant>`.');
    return ExitCode.ok;
  }
  ctx.out(formatTable(['id', 'tenant', 'created'], data.map((k) => [k.id, k.tenant, k.created_at])));
  return ExitCode.ok;
}

/** `inferq keys revoke <id>`: at once, in every API process. */
export async function revokeKey(ctx: CommandContext, id: string): Promise<number> {
  needAdminKey(ctx);
  await ctx.adminApi.request('DELETE', `/v1/admin/keys/${encodeURIComponent(id)}`);
  ctx.out(`Revoked ${id}.`);
  return ExitCode.ok;
}
