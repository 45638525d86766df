import Type, { type Static } from 'typebox';

/** Tasks inferq accepts. */
export const TASKS = ['classification'] as const;
export type TaskName = (typeof TASKS)[number];

export const Task = Type.Union(
  TASKS.map((t) => Type.Literal(t)),
  { description: 'What to do with the input' },
);
export type Task = Static<typeof Task>;

export function isTask(task: string): task is TaskName {
  return (TASKS as readonly string[]).includes(task);
}
