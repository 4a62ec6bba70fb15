/**
 * A shared arena of fixed-size slabs: a query worker writes a backfill's frames into a free slab, the
 * event loop writes that memory straight to the socket and frees the slab when the write is done.
 * Nothing is allocated per REQ on either side, which keeps the event loop's garbage collector quiet
 * (a fresh buffer per backfill made it run a full mark-compact every ~50 ms under load).
 */
export interface SlabArena {
  readonly data: SharedArrayBuffer
  /** One Int32 per slab: 0 free, 1 in use. */
  readonly states: Int32Array
  readonly slabBytes: number
}

/** The arena as it travels to workers (SharedArrayBuffers are shared, not copied). */
export interface SlabArenaInit {
  data: SharedArrayBuffer
  states: SharedArrayBuffer
  slabBytes: number
}

/** Creates `count` slabs of `slabBytes` each. */
export const createArena = (count: number, slabBytes: number): SlabArenaInit => ({
  data: new SharedArrayBuffer(count * slabBytes),
  states: new SharedArrayBuffer(4 * count),
  slabBytes,
})

/** Opens an arena received from the creating thread. */
export const openArena = (init: SlabArenaInit): SlabArena => ({
  data: init.data,
  states: new Int32Array(init.states),
  slabBytes: init.slabBytes,
})

/**
 * Claims a free slab, lowest first (only as many slabs are ever touched, hence resident, as are in use
 * at once); -1 when every slab is in use (the caller then allocates instead).
 */
export const claimSlab = (arena: SlabArena): number => {
  for (let slab = 0; slab < arena.states.length; slab++) if (Atomics.compareExchange(arena.states, slab, 0, 1) === 0) return slab
  return -1
}

/** Frees a slab for reuse. */
export const releaseSlab = (arena: SlabArena, slab: number): void => {
  Atomics.store(arena.states, slab, 0)
}

/** A Buffer over the first `length` bytes of a slab (no copy). */
export const slabBuffer = (arena: SlabArena, slab: number, length = arena.slabBytes): Buffer =>
  Buffer.from(arena.data, slab * arena.slabBytes, length)
