/**
 * String order by UTF-16 code unit, which for these strings (ids, digests,
 * names, label keys, ISO timestamps) is Go's byte order: what docker and
 * containerd sort by (sort.Strings, fmt's map keys, cobra's flags).
 * `localeCompare` would order case-insensitively, and its first call loads
 * ICU's collator and ~2.5 MiB of collation data into berthd for good.
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * "Natural" order, as docker's `network ls` sorts names: runs of digits
 * compare by their value (`net2` before `net10`) and come before any other
 * character; equal values with more leading zeros come after; everything
 * else compares by code unit, as `byCodeUnit` does.
 */
export function naturalOrder(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    const da = isDigit(ca);
    const db = isDigit(cb);
    if (da !== db) return da ? -1 : 1;
    if (!da) {
      if (ca !== cb) return ca < cb ? -1 : 1;
      i++;
      j++;
      continue;
    }
    const zerosFromA = i;
    const zerosFromB = j;
    while (i < a.length && a.charCodeAt(i) === 0x30) i++;
    while (j < b.length && b.charCodeAt(j) === 0x30) j++;
    const startA = i;
    const startB = j;
    while (i < a.length && isDigit(a.charCodeAt(i))) i++;
    while (j < b.length && isDigit(b.charCodeAt(j))) j++;
    // Without leading zeros, a longer run is a larger number; runs of one length compare as text.
    if (i - startA !== j - startB) return i - startA < j - startB ? -1 : 1;
    const cmp = byCodeUnit(a.slice(startA, i), b.slice(startB, j));
    if (cmp !== 0) return cmp;
    if (startA - zerosFromA !== startB - zerosFromB) return startA - zerosFromA < startB - zerosFromB ? -1 : 1;
  }
  // Equal so far, both read alike: the one that ended first is less.
  return Math.sign(a.length - b.length);
}
