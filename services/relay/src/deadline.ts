/** Milliseconds left until `deadline` (epoch milliseconds), never negative. */
export const remaining = (deadline: number): number => Math.max(0, deadline - Date.now())

/** The promise's value, or `fallback` once `ms` have passed (the promise itself goes on; its failure is the caller's). */
export const orAfter = <T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> => {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<F>(resolve => (timer = setTimeout(() => resolve(fallback), ms)))
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** True when `promise` settled (either way) within `ms`. */
export const within = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  orAfter(
    promise.then(
      () => true,
      () => true,
    ),
    ms,
    false,
  )

/** Resolves after `ms` without keeping the process alive. */
export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms).unref())
