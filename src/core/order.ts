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
