/** Slice `k` of `slices` nearly equal, consecutive parts of `list`. */
export function cut(list, k, slices) {
  return list.slice(Math.floor((k * list.length) / slices), Math.floor(((k + 1) * list.length) / slices));
}
