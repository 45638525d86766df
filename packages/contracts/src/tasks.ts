import Type, { type Static } from 'typebox';

/** Tasks inferq accepts. */
export const TASKS = ['classification', 'zero-shot-classification', 'summarization', 'generation', 'embedding'] as const;
export type TaskName = (typeof TASKS)[number];

// An enum, not a union of mapped literals: `Type.Union` of an array (not a tuple) types as `never`.
export const Task = Type.Enum(TASKS, { description: 'What to do with the input' });
export type Task = Static<typeof Task>;

export function isTask(task: string): task is TaskName {
  return (TASKS as readonly string[]).includes(task);
}
