import fp from 'fastify-plugin';
import type { onRequestHookHandler } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';

export interface QueueDashboardOptions {
  /** Where the dashboard is served. @defaultValue '/admin/queues' */
  basePath?: string;
  /**
   * Runs before every dashboard request (page, assets, its JSON API): the one place to guard
   * it, e.g. `adminKeyGuard(key)`. Undefined: open to anyone who reaches the API.
   */
  guard?: onRequestHookHandler;
  /** Let the dashboard retry, promote, clean and remove jobs. @defaultValue false (read-only) */
  allowActions?: boolean;
}

/**
 * bull-board at `basePath`, listing every queue of `app.queueInventory`. The list is refreshed
 * when the dashboard asks for it (at most once per the inventory's cache period), so a model
 * added to the folder, a bulk queue a batch created or a new optional queue appears without a
 * restart, and nothing polls Redis while no one looks. Read-only unless `allowActions`: the
 * dashboard is for seeing, and retrying a job there would bypass the API's checks.
 */
export const queueDashboardPlugin = fp<QueueDashboardOptions>(
  async (app, opts) => {
    const { basePath, guard, allowActions } = { basePath: '/admin/queues', allowActions: false, ...opts };
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(basePath);
    const board = createBullBoard({
      queues: [],
      serverAdapter,
      options: { uiConfig: { boardTitle: 'inferq queues' } },
    });
    let shown = '';
    const refresh = async (): Promise<void> => {
      const names = await app.queueInventory.names();
      const key = names.join('\n');
      if (key === shown) return;
      board.replaceQueues(names.map((name) => new BullMQAdapter(app.queueInventory.queue(name), { readOnlyMode: !allowActions })));
      shown = key;
    };

    // Its own scope: the guard and bull-board's error handler, view engine and static files
    // apply to the dashboard's routes only.
    await app.register(
      async (scope) => {
        // The dashboard has its own guard (the admin key): the tenant-key check of plugins/auth.ts
        // and the rate limit leave its routes alone, as they leave /healthz alone.
        scope.addHook('onRoute', (route) => {
          route.config = { ...route.config, access: 'public' };
        });
        if (guard) scope.addHook('onRequest', guard);
        scope.addHook('preHandler', async (request) => {
          // The page itself needs no list; its JSON API (`/api/queues`) does.
          if (request.url.startsWith(`${basePath}/api/`)) await refresh();
        });
        await scope.register(serverAdapter.registerPlugin(), { prefix: basePath });
      },
    );
  },
  { name: 'inferq-queue-dashboard', dependencies: ['inferq-queue-inventory'] },
);
