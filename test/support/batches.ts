/** Client helpers for the batch routes, as a user would call them. */

export interface BatchView {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  [key: string]: unknown;
}

export type ResultLine = { custom_id: string; result?: { label: string; score: number }[]; error?: { code: string; message: string } };

export const FINAL_BATCH = ['completed', 'failed', 'cancelled', 'expired'];

/** NDJSON lines `{custom_id: "r<i>", input}` for the texts. */
export function ndjsonOf(texts: string[]): string {
  return texts.map((input, i) => JSON.stringify({ custom_id: `r${i}`, input })).join('\n') + '\n';
}

export async function uploadBatch(
  api: string,
  body: string,
  query = 'task=classification',
  headers: Record<string, string> = {},
): Promise<{ status: number; json: BatchView & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${api}/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as BatchView & { error?: { code: string; message: string } } };
}

export async function readBatch(api: string, id: string, headers: Record<string, string> = {}): Promise<BatchView> {
  const res = await fetch(`${api}/v1/batches/${id}`, { headers });
  if (res.status !== 200) throw new Error(`GET batch ${id}: ${res.status}`);
  return (await res.json()) as BatchView;
}

/**
 * Reads the batch until `done` holds. Batches have no push channel, so this polls (every
 * 20 ms), bounded by the test's timeout.
 */
export async function waitForBatch(
  api: string,
  id: string,
  done: (view: BatchView) => boolean,
  headers: Record<string, string> = {},
): Promise<BatchView> {
  for (;;) {
    const view = await readBatch(api, id, headers);
    if (done(view)) return view;
    if (FINAL_BATCH.includes(view.status)) throw new Error(`batch ended (${view.status}) before the awaited state: ${JSON.stringify(view.request_counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function readResults(api: string, id: string): Promise<{ status: string | null; lines: ResultLine[] }> {
  const res = await fetch(`${api}/v1/batches/${id}/results`);
  if (res.status !== 200) throw new Error(`GET results ${id}: ${res.status}`);
  const text = await res.text();
  return {
    status: res.headers.get('inferq-batch-status'),
    lines: text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ResultLine),
  };
}
