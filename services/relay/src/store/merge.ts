/** One sorted source of index keys: its current key, and the first 4 bytes of that key's suffix as a number. */
interface Source {
  iterator: Iterator<Buffer>
  key: Buffer
  /** The suffix's leading u32 (the inverted created_at): most comparisons end here, without a native call. */
  order: number
}

/** True when `a`'s last `bytes` bytes sort before `b`'s. */
const suffixBefore = (a: Buffer, b: Buffer, bytes: number): boolean => a.compare(b, b.length - bytes, b.length, a.length - bytes, a.length) < 0

/** True when `a` and `b` end in the same `bytes` bytes. */
const sameSuffix = (a: Buffer, b: Buffer, bytes: number): boolean => a.compare(b, b.length - bytes, b.length, a.length - bytes, a.length) === 0

/**
 * Merges sorted key iterators by their common suffix (at least 4 bytes, a big-endian u32 first), dropping
 * repeats (an event reached through two tag values). Yields the keys themselves, in ascending order of
 * their suffixes (each index key read is a copy, key-chunks.ts, so each stays valid). Closes every
 * iterator at the end.
 */
export function* mergeBySuffix(iterables: Iterable<Buffer>[], suffixBytes: number): Generator<Buffer> {
  const heap: Source[] = []
  const less = (a: Source, b: Source): boolean => (a.order !== b.order ? a.order < b.order : suffixBefore(a.key, b.key, suffixBytes))
  const source = (iterator: Iterator<Buffer>, key: Buffer): Source => ({ iterator, key, order: key.readUInt32BE(key.length - suffixBytes) })
  try {
    for (const iterable of iterables) {
      const iterator = iterable[Symbol.iterator]()
      const first = iterator.next()
      if (first.done) iterator.return?.()
      else push(heap, source(iterator, first.value), less)
    }
    let last: Buffer | undefined
    let lastOrder = -1
    while (heap.length > 0) {
      const top = heap[0] as Source
      if (top.order !== lastOrder || !sameSuffix(top.key, last as Buffer, suffixBytes)) {
        last = top.key
        lastOrder = top.order
        yield last
      }
      const next = top.iterator.next()
      if (next.done) {
        top.iterator.return?.()
        const end = heap.pop() as Source
        if (heap.length > 0) {
          heap[0] = end
          siftDown(heap, 0, less)
        }
      } else {
        top.key = next.value
        top.order = next.value.readUInt32BE(next.value.length - suffixBytes)
        siftDown(heap, 0, less)
      }
    }
  } finally {
    for (const source of heap) source.iterator.return?.()
  }
}

type Less = (a: Source, b: Source) => boolean

const push = (heap: Source[], source: Source, less: Less): void => {
  heap.push(source)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!less(heap[i] as Source, heap[parent] as Source)) break
    ;[heap[i], heap[parent]] = [heap[parent] as Source, heap[i] as Source]
    i = parent
  }
}

const siftDown = (heap: Source[], i: number, less: Less): void => {
  for (;;) {
    const left = 2 * i + 1
    const right = left + 1
    let smallest = i
    if (left < heap.length && less(heap[left] as Source, heap[smallest] as Source)) smallest = left
    if (right < heap.length && less(heap[right] as Source, heap[smallest] as Source)) smallest = right
    if (smallest === i) return
    ;[heap[i], heap[smallest]] = [heap[smallest] as Source, heap[i] as Source]
    i = smallest
  }
}
