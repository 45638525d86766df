import ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
const dir = process.argv[2];
const tj = JSON.parse(readFileSync(dir + '/tokenizer.json', 'utf8'));
const tc = JSON.parse(readFileSync(dir + '/tokenizer_config.json', 'utf8'));
const tok = new Tokenizer(tj, tc);
const s = await ort.InferenceSession.create(dir + '/onnx/model.onnx');
console.log(s.inputNames, s.outputNames);
const texts = ['This product is great, I love it!', 'Terrible service, I want a refund.', 'My login password does not work after the update', 'The shipping was slow but the quality is good', 'Xylophone quantum zebra flummoxed.', 'hello'];
for (const t of texts) {
  const e = tok.encode(t);
  const n = e.ids.length;
  const f = (a) => new ort.Tensor('int64', BigInt64Array.from(a, BigInt), [1, n]);
  const out = await s.run({ input_ids: f(e.ids), attention_mask: f(e.attention_mask), token_type_ids: f(e.ids.map(() => 0)) });
  const l = Array.from(out.logits.data);
  const m = Math.max(...l); const ex = l.map(x => Math.exp(x - m)); const z = ex.reduce((a, b) => a + b);
  console.log(e.tokens.join(' '), '|', l.map(x => x.toFixed(3)), ex.map(x => (x / z).toFixed(3)));
}
