import { describe, expect, it } from 'vitest';
import Type from 'typebox';
import { compileBounded, withoutUniqueItems } from '../src/bounded-validator.js';
import { checkParameters } from '../src/task-parameters.js';

const Labels = Type.Object({ labels: Type.Array(Type.String(), { maxItems: 5, uniqueItems: true }) });

describe('compileBounded', () => {
  it('reports duplicates within bounds as uniqueItems, like TypeBox', () => {
    const validator = compileBounded(Labels);
    expect(validator.Check({ labels: ['a', 'b'] })).toBe(true);
    expect(validator.Check({ labels: ['a', 'a'] })).toBe(false);
    expect(validator.Errors({ labels: ['a', 'a'] }).map((e) => e.keyword)).toContain('uniqueItems');
  });

  it('reports an array over its maxItems by its length only, never by comparing its items', () => {
    const validator = compileBounded(Labels);
    const many = { labels: Array.from({ length: 200_000 }, () => 'a') };
    expect(validator.Check(many)).toBe(false);
    const keywords = validator.Errors(many).map((e) => e.keyword);
    expect(keywords).toContain('maxItems');
    expect(keywords).not.toContain('uniqueItems');
  });

  it('copies a schema without uniqueItems and leaves the original alone', () => {
    expect(JSON.stringify(withoutUniqueItems(Labels))).not.toContain('uniqueItems');
    expect(JSON.stringify(Labels)).toContain('uniqueItems');
  });

  it('zero-shot candidate_labels: 200,000 repeats answer "must have at most 50 items"', () => {
    const problems = checkParameters('zero-shot-classification', { candidate_labels: Array.from({ length: 200_000 }, () => 'x') });
    expect(problems.join(' ')).toMatch(/candidate_labels.*50/);
    expect(checkParameters('zero-shot-classification', { candidate_labels: ['x', 'x'] }).join(' ')).toMatch(/candidate_labels/);
  });
});
