import ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { bertClassifierOnnx, buildVocab, tokenizerFiles, TINY_CLASSIFIER, BENCH_CLASSIFIER } from './dist/index.js';
const preset = process.argv[2] === 'bench' ? BENCH_CLASSIFIER : TINY_CLASSIFIER;
const files = tokenizerFiles({ vocab: buildVocab(preset.vocabSize) });
const tok = new Tokenizer(JSON.parse(files['tokenizer.json']), JSON.parse(files['tokenizer_config.json']));
const texts = ['This product is great, I love it!', 'Terrible service, I want a refund.', 'My login password does not work after the update', 'The shipping was slow but the quality is good', 'Xylophone quantum zebra flummoxed.', 'hello', 'The app crashes every time I open it', 'Please cancel my subscription', 'Best purchase this year', 'Where is my invoice for last month?', 'good', 'bad', 'I never received the package and support was rude', 'Battery life is excellent and the screen is beautiful', 'okay', 'How do I reset my password?'];
for (const seed of [42, 7]) {
const s = await ort.InferenceSession.create(Buffer.from(bertClassifierOnnx({ ...preset, seed })));
const diffs = [];
for (const t of texts) {
  const e = tok.encode(t); const n = e.ids.length;
  const f = (a) => new ort.Tensor('int64', BigInt64Array.from(a, BigInt), [1, n]);
  const out = await s.run({ input_ids: f(e.ids), attention_mask: f(e.attention_mask), token_type_ids: f(e.ids.map(() => 0)) });
  const l = out.logits.data; diffs.push(l[1] - l[0]);
}
const mean = diffs.reduce((a, b) => a + b) / diffs.length; const std = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / diffs.length);
const p = diffs.map(d => 1 / (1 + Math.exp(-d)));
console.log(`seed ${seed} mean ${mean.toFixed(2)} std ${std.toFixed(2)} p: ${p.map(x => x.toFixed(2)).join(' ')}`);
}
