/**
 * Progress of a long export or import, on stderr only (an export may be streaming to stdout): a bar with
 * count, rate and ETA on a terminal; otherwise a plain line every few seconds, which logs keep readable.
 */
import cliProgress from 'cli-progress'

/** Counts work done; stop() prints the final state and releases the timer. */
export interface Progress {
  add(n?: number): void
  setTotal(total: number): void
  stop(): void
}

export interface ProgressOptions {
  label: string
  /** What is counted, in the plural: `events`, `bytes`. */
  unit: string
  total?: number
  /** Default process.stderr; a bar when it is a TTY, plain lines otherwise. */
  stream?: NodeJS.WriteStream
  /** Plain lines only: how often one is written (default 5000 ms). */
  intervalMs?: number
}

/** `47s`, `3m05s`, `2h03m`. */
export const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** The count, and the rate since the previous reading (or since the start). */
const meter = () => {
  const start = Date.now()
  let count = 0
  let last = { at: start, count: 0 }
  return {
    add: (n: number): void => void (count += n),
    get count(): number {
      return count
    },
    /** Per second since the previous call; the first call measures from the start. */
    recentRate(): number {
      const now = Date.now()
      const rate = ((count - last.count) * 1000) / Math.max(1, now - last.at)
      last = { at: now, count }
      return rate
    },
    averageRate: (): number => (count * 1000) / Math.max(1, Date.now() - start),
    elapsedSeconds: (): number => (Date.now() - start) / 1000,
  }
}

/** ` (24%, 8000/s, ETA 47s)` or ` (8000/s)`. */
const detail = (count: number, total: number | undefined, rate: number): string => {
  const perSecond = `${Math.round(rate)}/s`
  if (total === undefined || total <= 0) return ` (${perSecond})`
  const percent = Math.min(100, Math.floor((count * 100) / total))
  return ` (${percent}%, ${perSecond}, ETA ${formatDuration((total - count) / rate)})`
}

/** `<label>: 120000 <unit> (8000/s)` every interval, and `<label>: done, 120000 <unit> in 15s (8000/s)` at stop. */
const lineProgress = (opts: ProgressOptions, stream: NodeJS.WriteStream): Progress => {
  const m = meter()
  let total = opts.total
  let stopped = false
  const counted = (): string => `${m.count}${total === undefined ? '' : `/${total}`} ${opts.unit}`
  const timer = setInterval(() => {
    stream.write(`${opts.label}: ${counted()}${detail(m.count, total, m.recentRate())}\n`)
  }, opts.intervalMs ?? 5000)
  timer.unref()
  return {
    add: (n = 1) => m.add(n),
    setTotal: t => void (total = t),
    stop() {
      if (stopped) return
      stopped = true
      clearInterval(timer)
      stream.write(`${opts.label}: done, ${counted()} in ${formatDuration(m.elapsedSeconds())} (${Math.round(m.averageRate())}/s)\n`)
    },
  }
}

interface BarPayload {
  rate: number
  known: boolean
}

/** A cli-progress bar; the count is pushed to it a few times a second, not on every add(). */
const barProgress = (opts: ProgressOptions, stream: NodeJS.WriteStream): Progress => {
  const m = meter()
  let total = opts.total
  let stopped = false
  const format = (options: cliProgress.Options, params: cliProgress.Params, payload: BarPayload): string => {
    const rate = `${Math.round(payload.rate)}/s`
    const elapsed = formatDuration((Date.now() - params.startTime) / 1000)
    if (!payload.known) return `${opts.label}: ${params.value} ${opts.unit} | ${rate} | ${elapsed}`
    const percent = Math.min(100, Math.floor(params.progress * 100))
    const eta = formatDuration((params.total - params.value) / payload.rate)
    return `${opts.label} ${cliProgress.Format.BarFormat(params.progress, options)} ${percent}% | ${params.value}/${params.total} ${opts.unit} | ${rate} | ETA ${eta}`
  }
  const bar = new cliProgress.SingleBar({ stream, format, fps: 5, barsize: 30, hideCursor: null, gracefulExit: false })
  bar.start(total ?? 1, 0, { rate: 0, known: total !== undefined } satisfies BarPayload)
  const push = (rate: number): void => {
    if (total !== undefined) bar.setTotal(total)
    bar.update(m.count, { rate, known: total !== undefined } satisfies BarPayload)
  }
  const timer = setInterval(() => push(m.recentRate()), 500)
  timer.unref()
  return {
    add: (n = 1) => m.add(n),
    setTotal: t => void (total = t),
    stop() {
      if (stopped) return
      stopped = true
      clearInterval(timer)
      push(m.averageRate())
      bar.stop()
    },
  }
}

/** A bar on a terminal, plain lines elsewhere; never writes to stdout. */
export const createProgress = (opts: ProgressOptions): Progress => {
  const stream = opts.stream ?? process.stderr
  return stream.isTTY ? barProgress(opts, stream) : lineProgress(opts, stream)
}
