/** Short support tickets of three issues, written for these tests (no data set). */
export const ISSUE_TEXTS: Record<string, string[]> = {
  shipping: [
    'My parcel has not arrived and the tracking page shows no delivery update for a week.',
    'The courier says the package was delivered but nothing came to my address.',
    'Where is my order? The delivery date passed three days ago and tracking is stuck.',
    'The shipment is stuck in transit, can you check with the carrier about my parcel?',
    'Tracking number does not work and the package still has not been delivered.',
    'Delivery was promised for Monday, the parcel is late and the courier never called.',
  ],
  password: [
    'I cannot log in, the password reset email never reaches my inbox.',
    'My account is locked after too many login attempts, please unlock it.',
    'Login fails with my password even after I reset the password twice.',
    'The reset password link says expired and I still cannot sign in to my account.',
    'Two factor code is not accepted so I cannot log in to my account.',
    'I forgot my password and the account recovery form keeps failing.',
  ],
  billing: [
    'I was charged twice for my subscription this month, please refund the duplicate payment.',
    'The invoice shows the wrong amount and my card was billed too much.',
    'Why did my credit card get charged after I cancelled the subscription?',
    'Please send a corrected invoice, the tax on my bill is wrong.',
    'My payment was declined but the bank shows the charge on my card.',
    'The monthly bill doubled without notice, what is this extra charge on my invoice?',
  ],
};

/** `[{custom_id, input, issue}]`, interleaved so that no issue comes in one block. */
export function issueInputs(): { custom_id: string; input: string; issue: string }[] {
  const issues = Object.keys(ISSUE_TEXTS);
  const out: { custom_id: string; input: string; issue: string }[] = [];
  for (let i = 0; i < 6; i++) for (const issue of issues) out.push({ custom_id: `${issue}-${i}`, input: ISSUE_TEXTS[issue]![i]!, issue });
  return out;
}
