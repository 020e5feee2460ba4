/**
 * Bytes that are kept: prepared answers (held by the name table and the cache for as long as the name is asked),
 * the records of a cached upstream message and the EDE options made when the store changes. Node's Buffer.from,
 * Buffer.concat and Buffer.allocUnsafe hand out slices of a shared 8 KB pool, and one live slice keeps its whole
 * 8 KB alive; the per-query buffers (keys, replies) fill those pools between two kept allocations, so each kept
 * slice held a pool of its own. Measured in bench/soak.sh (churn rebuilding answers, a cache filling): 50-60 MB of
 * external memory per thread and RSS rising with it. These get memory of their own, exactly their size.
 */

/** A copy of `bytes` (or of `parts`, back to back) in a buffer of its own. */
export function keptCopy(...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const kept = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const part of parts) {
    kept.set(part, at);
    at += part.length;
  }
  return kept;
}
