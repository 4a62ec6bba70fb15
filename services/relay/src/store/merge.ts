/** One sorted source of index keys. */
interface Source {
  iterator: Iterator<Buffer>
  head: Buffer
}

/** Bytes at the end of every key that define the serving order (inverted created_at + id). */
const suffixOf = (key: Buffer, suffixBytes: number): Buffer => Buffer.from(key.subarray(key.length - suffixBytes))

/**
 * Merges sorted key iterators by their common suffix, dropping repeats (an event reached through
 * two tag values). Yields copies of the suffixes in ascending order; closes every iterator at the end.
 */
export function* mergeBySuffix(iterables: Iterable<Buffer>[], suffixBytes: number): Generator<Buffer> {
  const heap: Source[] = []
  try {
    for (const iterable of iterables) {
      const iterator = iterable[Symbol.iterator]()
      const first = iterator.next()
      if (first.done) iterator.return?.()
      else push(heap, { iterator, head: suffixOf(first.value, suffixBytes) })
    }
    let last: Buffer | undefined
    while (heap.length > 0) {
      const top = heap[0] as Source
      if (!last || !last.equals(top.head)) yield (last = top.head)
      const next = top.iterator.next()
      if (next.done) {
        top.iterator.return?.()
        const end = heap.pop() as Source
        if (heap.length > 0) {
          heap[0] = end
          siftDown(heap, 0)
        }
      } else {
        top.head = suffixOf(next.value, suffixBytes)
        siftDown(heap, 0)
      }
    }
  } finally {
    for (const source of heap) source.iterator.return?.()
  }
}

const less = (a: Source, b: Source): boolean => Buffer.compare(a.head, b.head) < 0

const push = (heap: Source[], source: Source): void => {
  heap.push(source)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!less(heap[i] as Source, heap[parent] as Source)) break
    ;[heap[i], heap[parent]] = [heap[parent] as Source, heap[i] as Source]
    i = parent
  }
}

const siftDown = (heap: Source[], i: number): void => {
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
