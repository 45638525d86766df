import type { ClassificationParameters, ClassificationResult, TaskName } from '@inferq/contracts';

/** What the API stores in a BullMQ job and the worker reads. */
export interface InferenceJobData {
  task: TaskName;
  model: string;
  input: string;
  parameters: ClassificationParameters;
}

export type InferenceJobResult = ClassificationResult;
