// The relay's garbage collections during a phase, read from its /metrics (prom-client's
// nodejs_gc_duration_seconds: the event loop's isolate, not the worker threads').

/** Collections of one kind: how many, their time, and how many took over 10 ms (prom-client's bucket edge). */
export interface GcKind {
  count: number
  ms: number
  over10ms: number
}

/** The event loop's collections by kind: young (scavenges), mark-compacts, incremental marking steps. */
export interface RelayGc {
  young: GcKind
  markCompact: GcKind
  incremental: GcKind
}

const KINDS = { minor: 'young', major: 'markCompact', incremental: 'incremental' } as const

const none = (): GcKind => ({ count: 0, ms: 0, over10ms: 0 })

/** A label's value in a Prometheus sample's label set, e.g. `kind` in `{le="0.01",kind="minor"}`. */
const label = (labels: string, name: string): string | undefined => new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1]

/** The event loop's collections so far, from the Prometheus text of the relay's /metrics. */
export const parseRelayGc = (text: string): RelayGc => {
  const gc: RelayGc = { young: none(), markCompact: none(), incremental: none() }
  const within10ms: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const sample = /^nodejs_gc_duration_seconds_(sum|count|bucket)\{([^}]*)\} (\S+)$/.exec(line)
    if (!sample) continue
    const [, part, labels = '', raw] = sample
    const kind = KINDS[label(labels, 'kind') as keyof typeof KINDS]
    if (!kind) continue
    const value = Number(raw)
    if (part === 'sum') gc[kind].ms = 1000 * value
    else if (part === 'count') gc[kind].count = value
    else if (label(labels, 'le') === '0.01') within10ms[kind] = value
  }
  for (const kind of Object.values(KINDS)) gc[kind].over10ms = gc[kind].count - (within10ms[kind] ?? gc[kind].count)
  return gc
}

/** What happened between two readings. */
export const gcBetween = (from: RelayGc, to: RelayGc): RelayGc => {
  const minus = (a: GcKind, b: GcKind): GcKind => ({ count: a.count - b.count, ms: a.ms - b.ms, over10ms: a.over10ms - b.over10ms })
  return { young: minus(to.young, from.young), markCompact: minus(to.markCompact, from.markCompact), incremental: minus(to.incremental, from.incremental) }
}

/** Reads the relay's /metrics (at the WebSocket URL's host and port, with its bearer key). */
export const readRelayGc = async (url: string, key: string): Promise<RelayGc> => {
  const http = new URL(url)
  http.protocol = http.protocol === 'wss:' ? 'https:' : 'http:'
  http.pathname = '/metrics'
  const response = await fetch(http, { headers: { authorization: `Bearer ${key}` } })
  if (!response.ok) throw new Error(`GET ${http.href}: HTTP ${response.status}`)
  return parseRelayGc(await response.text())
}

/** One line: `young 120 (98 ms, 0 over 10 ms), mark-compact 5 (14 ms, 0 over 10 ms), incremental marking 41 ms`. */
export const gcText = (gc: RelayGc): string => {
  const kind = (name: string, k: GcKind) => `${name} ${k.count} (${k.ms.toFixed(0)} ms, ${k.over10ms} over 10 ms)`
  return `${kind('young', gc.young)}, ${kind('mark-compact', gc.markCompact)}, incremental marking ${gc.incremental.ms.toFixed(0)} ms (event loop, from /metrics)`
}

/**
 * A reader of the relay's collections (undefined when /metrics cannot be read), primed: it reads once before
 * it resolves. The process's first fetch() loads Node's HTTP client (undici), about 0.15 s of CPU on its
 * threads; unprimed, that landed in the first 0.3 s of the timed ingest, whose GC reading comes right after
 * the warm-up, and slowed the relay on the shared cores (whole-run p99 59-72 ms against 52-66 primed).
 */
export const relayGcReader = async (url: string, key: string): Promise<() => Promise<RelayGc | undefined>> => {
  const read = () => readRelayGc(url, key).catch(() => undefined)
  await read()
  return read
}
