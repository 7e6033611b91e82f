import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { Router } from './server.ts';

/** What the namespace routes call: metadata's NamespaceStore. */
export interface NamespaceRole {
  list(ctx: Ctx): Promise<Array<{ name: string; labels: Record<string, string> }>>;
  create(ctx: Ctx, name: string, labels?: Record<string, string>): Promise<{ name: string; labels: Record<string, string> }>;
  remove(ctx: Ctx, name: string): Promise<void>;
}

/**
 * Namespaces, ctr's `namespaces` view:
 *   GET    /namespaces                      -> [{name, labels}]
 *   POST   /namespaces {name, labels?}      -> {name, labels}   (409 if it exists)
 *   DELETE /namespaces/:name                -> 204              (412 while it holds anything)
 */
export function registerNamespaceRoutes(router: Router, namespaces: NamespaceRole): void {
  router.add('GET', '/namespaces', async (req) => namespaces.list(req.ctx));
  router.add('POST', '/namespaces', async (req) => {
    const body = (await req.json<{ name?: unknown; labels?: unknown }>()) ?? {};
    if (typeof body.name !== 'string') throw berthError('InvalidArgument', 'a namespace name is required');
    const labels = body.labels ?? {};
    if (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string')) throw berthError('InvalidArgument', 'labels must map strings to strings');
    return namespaces.create(req.ctx, body.name, labels as Record<string, string>);
  });
  router.add('DELETE', '/namespaces/:name', async (req) => namespaces.remove(req.ctx, req.params.name));
}
