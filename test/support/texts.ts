const SUBJECTS = ['The battery', 'My order', 'The login page', 'This blender', 'Customer support', 'The app', 'The invoice', 'Shipping'];
const VERBS = ['works great', 'stopped working', 'is terrible', 'arrived late', 'is fine', 'crashes often', 'was refunded', 'is good value'];
const TAILS = ['', ' after two days', ' and I love it', ' but the price is too high', ', please fix the password reset', ' and the screen is bright and the sound is clear'];

/** `n` distinct review-like texts of varied length (2 to ~60 tokens), deterministic. */
export function reviewTexts(n: number): string[] {
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const parts = [
      `${SUBJECTS[i % SUBJECTS.length]} ${VERBS[(i * 3) % VERBS.length]}${TAILS[(i * 5) % TAILS.length]}.`,
    ];
    for (let k = 0; k < i % 4; k++) parts.push(`${SUBJECTS[(i + k) % SUBJECTS.length]} ${VERBS[(i + 2 * k) % VERBS.length]}.`);
    texts.push(`${parts.join(' ')} (#${i})`);
  }
  return texts;
}
