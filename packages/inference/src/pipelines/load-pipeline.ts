/**
 * Loads the pipeline a model folder serves, picked from its `config.json` (see
 * {@link modelTasks}), or the task asked for.
 */
import { readModelConfig } from '../model-folder.js';
import { modelTasks, type ModelTask } from '../model-kind.js';
import { EmbeddingPipeline } from './embedding.js';
import { SummarizationPipeline } from './summarization.js';
import { TextClassificationPipeline, type PipelineLoadOptions } from './text-classification.js';
import { TextGenerationPipeline } from './text-generation.js';
import { ZeroShotClassificationPipeline, type ZeroShotLoadOptions } from './zero-shot-classification.js';

/** A loaded pipeline, tagged with its task. */
export type LoadedPipeline =
  | { task: 'text-classification'; pipeline: TextClassificationPipeline }
  | { task: 'zero-shot-classification'; pipeline: ZeroShotClassificationPipeline }
  | { task: 'summarization'; pipeline: SummarizationPipeline }
  | { task: 'text-generation'; pipeline: TextGenerationPipeline }
  | { task: 'feature-extraction'; pipeline: EmbeddingPipeline };

/** Options of {@link loadPipeline}. */
export interface LoadPipelineOptions extends ZeroShotLoadOptions, PipelineLoadOptions {
  /** The task to load the model for. @defaultValue the model's preferred task */
  task?: ModelTask;
}

/** Loads the pipeline of a model folder; throws when the model does not serve the task. */
export async function loadPipeline(dir: string, options: LoadPipelineOptions = {}): Promise<LoadedPipeline> {
  const { task: asked, ...rest } = options;
  const tasks = modelTasks(await readModelConfig(dir));
  const task = asked ?? tasks[0];
  if (task === undefined) throw new Error(`Can't tell which task the model in ${dir} serves from its config.json architectures`);
  if (!tasks.includes(task)) throw new Error(`The model in ${dir} serves ${tasks.join(', ') || 'no known task'}, not ${task}`);
  switch (task) {
    case 'text-classification':
      return { task, pipeline: await TextClassificationPipeline.load(dir, rest) };
    case 'zero-shot-classification':
      return { task, pipeline: await ZeroShotClassificationPipeline.load(dir, rest) };
    case 'summarization':
      return { task, pipeline: await SummarizationPipeline.load(dir, rest) };
    case 'text-generation':
      return { task, pipeline: await TextGenerationPipeline.load(dir, rest) };
    case 'feature-extraction':
      return { task, pipeline: await EmbeddingPipeline.load(dir, rest) };
  }
}
