/**
 * Keywords of clusters by class-based TF-IDF, as BERTopic names its topics: the documents of
 * a cluster are joined into one, a term's frequency in it is weighted by
 * `log(1 + A / f_t)`, where A is the average number of words per cluster and f_t the term's
 * frequency over all clusters. Common English function words are left out.
 */

const STOP_WORDS = new Set(
  `a about above after again against all also am an and any are as at be because been before being below between both but by can
  could did do does doing don down during each even ever every few for from further get got had has have having he her here hers
  him his how i if in into is it its itself just like ll me more most much must my no nor not now of off on once only or other our
  out over own re really s same she should so some still such t than that the their them then there these they this those through
  to too under until up ve very was way we well were what when where which while who whom why will with would you your yours im
  dont didnt doesnt isnt wasnt cant wont ive thats one also get got`.split(/\s+/),
);

/** Lower-cased words of a text, function words left out. */
export function keywordTerms(text: string): string[] {
  const words = text.normalize('NFD').replace(/\p{M}+/gu, '').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((w) => w.length > 1 && !STOP_WORDS.has(w) && !/^\d+$/.test(w));
}

/** The `top` keywords of each cluster (`clusters[c]` = its texts), best first. */
export function clusterKeywords(clusters: readonly (readonly string[])[], top = 5): string[][] {
  const tf = clusters.map((texts) => {
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of keywordTerms(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    return counts;
  });
  const totals = new Map<string, number>();
  let words = 0;
  for (const counts of tf) {
    for (const [w, c] of counts) {
      totals.set(w, (totals.get(w) ?? 0) + c);
      words += c;
    }
  }
  const avg = words / Math.max(1, clusters.length);
  return tf.map((counts) => {
    const size = [...counts.values()].reduce((a, b) => a + b, 0) || 1;
    return [...counts.entries()]
      .map(([w, c]) => [w, (c / size) * Math.log(1 + avg / totals.get(w)!)] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([w]) => w);
  });
}
