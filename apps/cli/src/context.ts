import { ApiClient, DEFAULT_API_URL } from './api-client.js';
import type { OutputStream } from './progress.js';

/** What a command reads and writes: the process's streams and environment, or a test's. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Record<string, string | undefined>;
  /** Folder that relative paths start from. */
  cwd: string;
  /** Aborted when the user interrupts (Ctrl-C). */
  signal?: AbortSignal;
}

/** A command's view of the invocation: its streams and the API it talks to. */
export class CommandContext {
  private client: ApiClient | undefined;
  private adminClient: ApiClient | undefined;

  constructor(
    readonly io: CliIo,
    /** `--api`, when given. */
    private readonly apiOption: string | undefined,
  ) {}

  /** The API client (`--api`, else `INFERQ_API_URL`, else the default), with the tenant key `INFERQ_API_KEY`. */
  get api(): ApiClient {
    this.client ??= new ApiClient(this.baseUrl, this.io.env.INFERQ_API_KEY || undefined);
    return this.client;
  }

  /** A client of the same API with the admin key `INFERQ_ADMIN_KEY` (for `inferq keys`). */
  get adminApi(): ApiClient {
    this.adminClient ??= new ApiClient(this.baseUrl, this.io.env.INFERQ_ADMIN_KEY || undefined);
    return this.adminClient;
  }

  private get baseUrl(): string {
    return this.apiOption ?? (this.io.env.INFERQ_API_URL || DEFAULT_API_URL);
  }

  out(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  err(line = ''): void {
    this.io.stderr.write(`${line}\n`);
  }
}

/** Rows as aligned columns, the header first. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `text` cut to `max` characters with an ellipsis, on one line. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}
