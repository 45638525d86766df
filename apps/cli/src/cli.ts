/**
 * The `inferq` command line, as a function of its arguments and streams (so tests run it
 * in-process): parses with commander, runs the command, maps every failure to an exit code
 * (see `errors.ts`) and one message that says what to do.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_API_URL } from './api-client.js';
import { cancel, results, status, submit, type SubmitOptions } from './commands/batches.js';
import { cluster, embed, type ClusterOptions, type EmbedOptions } from './commands/clusters.js';
import { classify, triage } from './commands/jobs.js';
import { listModels, pull } from './commands/models.js';
import { createKey, listKeys, revokeKey } from './commands/keys.js';
import { CommandContext, type CliIo } from './context.js';
import { CliError, ExitCode } from './errors.js';

export const VERSION = '0.1.0';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/**
 * The options among `names` that were given on the command line, as `T`'s fields: one not
 * given is left out (not set to undefined), so the command's defaults apply.
 */
function given<T>(opts: Record<string, unknown>, names: readonly (keyof T & string)[]): Partial<T> {
  return Object.fromEntries(names.filter((name) => opts[name] !== undefined).map((name) => [name, opts[name]])) as Partial<T>;
}

const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  the job or batch failed (or some inputs did), or a download failed its checks
  2  usage error: bad option, argument or input file (nothing was sent)
  3  the API (or the Hub) could not be reached
  4  the API (or the Hub) answered an error; its code is printed
  130 interrupted (a batch keeps running on the server)

Environment:
  INFERQ_API_URL   the API (default ${DEFAULT_API_URL}); --api wins
  INFERQ_API_KEY   tenant key, sent as Authorization: Bearer (APIs with ADMIN_API_KEY set)
  INFERQ_ADMIN_KEY the API's admin key, for \`inferq keys\`
  MODELS_DIR       where \`models pull\` puts models (default ./models)
  HF_ENDPOINT      the Hugging Face Hub or a mirror (default https://huggingface.co)
  HF_TOKEN         Hugging Face access token, for private and gated models`;

/** Builds the program; `run` receives each command's exit code. */
export function buildProgram(io: CliIo, run: (action: () => Promise<number>) => Promise<void>): Command {
  const program = new Command('inferq');
  program
    .description('Command line of inferq, the batch inference service: submit files as batches, watch them, fetch results, classify, pull models.')
    .version(VERSION, '-V, --version')
    .option('--api <url>', `inferq API address (env INFERQ_API_URL, default ${DEFAULT_API_URL})`)
    .showHelpAfterError(true)
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    });
  const context = (command: Command): CommandContext => new CommandContext(io, command.optsWithGlobals<{ api?: string }>().api);

  program
    .command('submit')
    .description('Submit a JSONL or CSV file as a batch, show its progress, write its results')
    .argument('<file>', 'JSONL ({"custom_id"?, "input"} or {"custom_id"?, "text"} per line) or CSV/TSV with a header row')
    .requiredOption('-t, --task <task>', 'task of every input, e.g. classification')
    .option('-m, --model <org/name>', "model (default: the API's default for the task)")
    .option('-c, --column <name>', 'CSV: column holding the text (default: input, text, review, body, or the only column)')
    .option('--id-column <name>', 'CSV: column holding each row\'s custom_id (default: custom_id or id; else row-N)')
    .addOption(new Option('--format <format>', 'input format (default: from the extension)').choices(['jsonl', 'csv', 'tsv']))
    .option('--parameters <json>', 'task parameters as JSON, e.g. \'{"top_k":1}\'')
    .option('-o, --out <file>', 'results file (default: <file>.results.jsonl)')
    .option('--no-wait', 'print the batch id and return without waiting')
    .option('--interval <seconds>', 'seconds between two progress reads', positiveNumber('--interval'), 1)
    .option('--idempotency-key <key>', 'a key that makes a retried submit return the first batch instead of a second one')
    .action(async (file: string, opts: Record<string, unknown>, command: Command) =>
      run(() =>
        submit(context(command), file, {
          task: opts.task as string,
          wait: opts.wait as boolean,
          interval: (opts.interval as number) * 1000,
          ...given<SubmitOptions>(opts, ['model', 'column', 'idColumn', 'format', 'parameters', 'out', 'idempotencyKey']),
        }),
      ),
    );

  program
    .command('status')
    .description('Show a batch (batch_…) or a job: status and counts')
    .argument('<id>', 'batch or job id')
    .option('--json', 'print the API\'s view as JSON', false)
    .action(async (id: string, opts: { json: boolean }, command: Command) => run(() => status(context(command), id, opts)));

  program
    .command('results')
    .description('Fetch a batch\'s results (JSONL, input order)')
    .argument('<id>', 'batch id')
    .option('-o, --out <file>', 'write to this file (default: stdout)')
    .action(async (id: string, opts: { out?: string }, command: Command) => run(() => results(context(command), id, opts)));

  program
    .command('cancel')
    .description('Cancel a batch: chunks not started are not run')
    .argument('<id>', 'batch id')
    .action(async (id: string, _opts: unknown, command: Command) => run(() => cancel(context(command), id)));

  program
    .command('classify')
    .description('Classify one text and wait for the answer')
    .argument('<text>', 'the text')
    .option('-m, --model <org/name>', "model (default: the API's default classifier)")
    .option('-k, --top-k <n>', 'keep the n best labels', positiveInt('--top-k'))
    .option('--timeout <seconds>', 'longest wait for the answer', positiveNumber('--timeout'), 120)
    .option('--json', 'print the job as JSON', false)
    .action(async (text: string, opts: { model?: string; topK?: number; timeout: number; json: boolean }, command: Command) =>
      run(() => classify(context(command), text, opts)),
    );

  program
    .command('triage')
    .description('Triage a support ticket: its issue and a one-line summary (POST /v1/tickets)')
    .argument('<text>', 'the ticket\'s text')
    .option('-s, --subject <line>', 'the ticket\'s subject line')
    .option('-l, --labels <list>', "comma-separated issue labels to choose from (default: the API's set)", (v: string) =>
      v.split(',').map((l) => l.trim()).filter(Boolean),
    )
    .option('--timeout <seconds>', 'longest wait for the answer', positiveNumber('--timeout'), 120)
    .option('--json', 'print the ticket as JSON', false)
    .action(async (text: string, opts: { subject?: string; labels?: string[]; timeout: number; json: boolean }, command: Command) =>
      run(() => triage(context(command), text, opts)),
    );

  program
    .command('embed')
    .description('Embed every text of a file (an embedding batch) and write the vectors as JSONL')
    .argument('<file>', 'JSONL or CSV/TSV, as for submit')
    .option('-m, --model <org/name>', "embedding model (default: the API's default)")
    .option('-c, --column <name>', 'CSV: column holding the text')
    .option('--id-column <name>', "CSV: column holding each row's custom_id")
    .addOption(new Option('--format <format>', 'input format (default: from the extension)').choices(['jsonl', 'csv', 'tsv']))
    .option('--parameters <json>', 'embedding parameters as JSON, e.g. \'{"dimensions":128}\'')
    .option('-o, --out <file>', 'vectors file (default: <file>.vectors.jsonl)')
    .option('--interval <seconds>', 'seconds between two progress reads', positiveNumber('--interval'), 1)
    .action(async (file: string, opts: Record<string, unknown>, command: Command) =>
      run(() =>
        embed(context(command), file, {
          interval: (opts.interval as number) * 1000,
          ...given<EmbedOptions>(opts, ['model', 'column', 'idColumn', 'format', 'parameters', 'out']),
        }),
      ),
    );

  program
    .command('cluster')
    .description('Find the common issues in a file: embeds and clusters it (POST /v1/clusters), then prints each cluster')
    .argument('<file>', 'JSONL or CSV/TSV, as for submit')
    .option('-m, --model <org/name>', "embedding model (default: the API's default)")
    .option('-c, --column <name>', 'CSV: column holding the text (e.g. body)')
    .option('--id-column <name>', "CSV: column holding each row's custom_id")
    .addOption(new Option('--format <format>', 'input format (default: from the extension)').choices(['jsonl', 'csv', 'tsv']))
    .option('-k, --num-clusters <n>', 'number of clusters (default: chosen automatically)', positiveInt('--num-clusters'))
    .option('--max-clusters <n>', 'largest k tried when choosing it', positiveInt('--max-clusters'))
    .option('--min-cluster-size <n>', 'smaller clusters become outliers', positiveInt('--min-cluster-size'))
    .option('-o, --out <file>', 'write each input\'s cluster ({custom_id, cluster} JSONL)')
    .option('--interval <seconds>', 'seconds between two progress reads', positiveNumber('--interval'), 1)
    .option('--json', 'print the run as JSON', false)
    .action(async (file: string, opts: Record<string, unknown>, command: Command) =>
      run(() =>
        cluster(context(command), file, {
          interval: (opts.interval as number) * 1000,
          json: opts.json as boolean,
          ...given<ClusterOptions>(opts, ['model', 'column', 'idColumn', 'format', 'numClusters', 'maxClusters', 'minClusterSize', 'out']),
        }),
      ),
    );

  const models = program.command('models').description('Models: list what the API serves, pull from the Hub');
  models
    .command('list')
    .description('List the models the API serves (GET /v1/models)')
    .option('--json', 'print as JSON', false)
    .action(async (opts: { json: boolean }, command: Command) => run(() => listModels(context(command), opts)));
  models
    .command('pull')
    .description('Download a model from the Hugging Face Hub into MODELS_DIR/<org>/<name> (resumable)')
    .argument('<org/name>', 'model id on the Hub, e.g. Xenova/distilbert-base-uncased-finetuned-sst-2-english')
    .option('--models-dir <dir>', 'models folder (env MODELS_DIR, default ./models)')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--variant <name>', 'ONNX variant: quantized, fp16, ... (picks onnx/model_<name>.onnx)')
    .option('-f, --force', 'download again even if the model folder exists', false)
    .action(async (id: string, opts: { modelsDir?: string; revision: string; variant?: string; force: boolean }, command: Command) =>
      run(() => pull(context(command), id, opts)),
    );

  const keys = program.command('keys').description('Tenant API keys (needs INFERQ_ADMIN_KEY, the API\'s ADMIN_API_KEY)');
  keys
    .command('create')
    .description('Create a key for a tenant; prints the key, shown only this once')
    .argument('<tenant>', 'tenant name: letters, digits, _ . -')
    .option('--json', 'print as JSON', false)
    .action(async (tenant: string, opts: { json: boolean }, command: Command) => run(() => createKey(context(command), tenant, opts)));
  keys
    .command('list')
    .description('List keys: ids and tenants, never the keys')
    .option('--json', 'print as JSON', false)
    .action(async (opts: { json: boolean }, command: Command) => run(() => listKeys(context(command), opts)));
  keys
    .command('revoke')
    .description('Revoke a key at once')
    .argument('<id>', 'the key\'s id (key_...)')
    .action(async (id: string, _opts: unknown, command: Command) => run(() => revokeKey(context(command), id)));

  return program;
}

/** Writes an error's message and returns its exit code. */
function reportError(io: CliIo, error: unknown): number {
  if (error instanceof CliError) {
    io.stderr.write(`inferq: ${error.message}\n`);
    return error.exitCode;
  }
  io.stderr.write(`inferq: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return ExitCode.failed;
}

/**
 * Runs `inferq` with `argv` (the arguments after the program name). Resolves with the exit
 * code; never throws.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(io, async (action) => {
    exitCode = await action();
  });
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      // commander printed the message (and the help hint) already.
      return ExitCode.usage;
    }
    return reportError(io, error);
  }
}
