/**
 * A small client of the inferq HTTP API over `fetch`: every failure becomes a
 * {@link CliError} with the exit code a shell user acts on (3 unreachable, 4 API error).
 */
import { CliError, ExitCode, systemErrorCode } from './errors.js';

/** The default API address, as `npm start` serves it. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

/** What the API said when it refused a request: its `{error: {code, message}}` and the HTTP status. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly apiMessage: string,
    hint?: string,
  ) {
    super(`API error ${code} (HTTP ${status}): ${apiMessage}${hint ? `\n${hint}` : ''}`, ExitCode.apiError);
    this.name = 'ApiError';
  }
}

/** What to do next, for the error codes where the message alone doesn't say. */
const HINTS: Record<string, string> = {
  INFERQ_ERR_UNKNOWN_MODEL: 'See the models the API has with `inferq models list`; fetch one with `inferq models pull <org/name>` into its MODELS_DIR.',
  INFERQ_ERR_TASK_MISMATCH: 'See which tasks each model serves with `inferq models list`.',
  INFERQ_ERR_QUEUE_UNAVAILABLE: 'The API cannot reach Redis: start redis-server (or fix REDIS_URL on the API), then retry.',
  INFERQ_ERR_NOT_FOUND: 'This API has no such route: check that --api points at an inferq API of this version.',
  INFERQ_ERR_JOB_NOT_FOUND: 'Check the id; finished jobs are kept for JOB_RETENTION_SECONDS (a day by default).',
  INFERQ_ERR_BATCH_NOT_FOUND: 'Check the id; finished batches are kept for a limited time.',
  INFERQ_ERR_BATCH_LINE_INVALID: 'Fix that line of the input file and submit again.',
  INFERQ_ERR_PAYLOAD_TOO_LARGE: 'Split the input file into smaller ones and submit each.',
  INFERQ_ERR_BATCH_TOO_MANY_INPUTS: 'Split the input file into smaller ones and submit each.',
  INFERQ_ERR_RATE_LIMITED: 'Wait a little and retry.',
  INFERQ_ERR_UNAUTHORIZED: 'Set INFERQ_API_KEY to a tenant key (an admin makes one with `inferq keys create <tenant>`); for `inferq keys`, set INFERQ_ADMIN_KEY.',
  INFERQ_ERR_FORBIDDEN: '`inferq keys` needs INFERQ_ADMIN_KEY (the API\'s ADMIN_API_KEY); every other command needs a tenant key in INFERQ_API_KEY.',
};

export interface ApiRequest {
  /** JSON-encoded as the body. */
  json?: unknown;
  /** A raw body (a stream for uploads), sent with `headers['content-type']`. */
  body?: ReadableStream<Uint8Array> | string;
  /** Query string parameters; undefined values are left out. */
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Calls the inferq API at `baseUrl`. */
export class ApiClient {
  readonly baseUrl: string;

  /**
   * @param baseUrl - the API's address, e.g. `http://127.0.0.1:8080`; a path prefix is kept.
   * @param apiKey - sent as `Authorization: Bearer <key>` when given.
   */
  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
  ) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new CliError(`--api / INFERQ_API_URL is not a URL: "${baseUrl}" (expected e.g. ${DEFAULT_API_URL})`, ExitCode.usage);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(`--api / INFERQ_API_URL must be an http(s) URL, got "${baseUrl}"`, ExitCode.usage);
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
  }

  url(path: string, query: ApiRequest['query'] = {}): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    return url.href;
  }

  /** Sends a request; resolves with a 2xx response, throws {@link ApiError} or an unreachable {@link CliError}. */
  async request(method: string, path: string, request: ApiRequest = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let body: RequestInit['body'];
    if (request.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.json);
    } else if (request.body !== undefined) {
      body = request.body;
    }
    let response: Response;
    try {
      response = await fetch(this.url(path, request.query), {
        method,
        headers,
        body,
        signal: request.signal,
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw this.unreachable(error);
    }
    if (!response.ok) throw await apiError(response);
    return response;
  }

  /** A request whose answer is JSON. */
  async json<T>(method: string, path: string, request: ApiRequest = {}): Promise<T> {
    const response = await this.request(method, path, request);
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw this.unreachable(error, `the API at ${this.baseUrl} sent an answer that is not JSON`);
    }
  }

  /** The error for a request that got no HTTP answer. */
  unreachable(error: unknown, what?: string): CliError {
    const code = systemErrorCode(error) ?? (error as Error).message;
    return new CliError(
      `${what ?? `Cannot reach the inferq API at ${this.baseUrl}`} (${code}).\n` +
        'Start it (`npm start`, or `npm run demo` for a self-contained run), or point --api / INFERQ_API_URL at a running API.',
      ExitCode.unreachable,
    );
  }
}

/** Reads a non-2xx response's `{error: {code, message}}` (or makes one from the status). */
async function apiError(response: Response): Promise<ApiError> {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || 'request failed';
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // Not our error body (a proxy's page, say): keep the status.
  }
  return new ApiError(response.status, code, message, HINTS[code]);
}
