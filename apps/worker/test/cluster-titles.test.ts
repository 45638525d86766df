import { describe, expect, it } from 'vitest';
import { cleanTitle, titlePrompt } from '../src/cluster-titles.js';

describe('cluster titles', () => {
  it('the prompt lists the keywords and each example on one line', () => {
    const prompt = titlePrompt(['My parcel\nis late', 'Tracking is stuck'], ['parcel', 'tracking']);
    expect(prompt).toContain('keywords: parcel, tracking');
    expect(prompt).toContain('- My parcel is late\n- Tracking is stuck\n');
    expect(prompt.endsWith('A short title (a few words) for this issue:')).toBe(true);
  });

  it('a title is the first non-empty line, without quotes or a final period, at most 80 characters', () => {
    expect(cleanTitle('\n  "Late deliveries."\nMore text')).toBe('Late deliveries');
    expect(cleanTitle('   \n  ')).toBeUndefined();
    expect(cleanTitle('x'.repeat(200))).toHaveLength(80);
  });
});
