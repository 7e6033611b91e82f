import type { UnaryHandler } from './types.ts';
import { sandboxState, toCriSandbox, type CriSandboxState } from './sandbox-view.ts';

interface ListPodSandboxRequest {
  filter?: { id?: string; state?: { state?: CriSandboxState }; label_selector?: Record<string, string> };
}

/** ListPodSandbox: the filter's id (or id prefix), state and labels must all match. */
export const listPodSandbox: UnaryHandler<ListPodSandboxRequest, object> = async (ctx, req, deps) => {
  const f = req.filter;
  const list = await deps.sandboxes.list(ctx, {
    id: f?.id || undefined,
    state: f?.state ? sandboxState(f.state.state) : undefined,
    labels: f?.label_selector && Object.keys(f.label_selector).length ? f.label_selector : undefined,
  });
  return { items: list.map(toCriSandbox) };
};
