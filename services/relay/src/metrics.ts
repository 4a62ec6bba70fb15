import type { Hint } from '@msr/hints'
import { isAddressable, isEphemeral, isReplaceable } from '@msr/nostr'
import { createMetrics } from '@msr/telemetry'
import type { BackupObserver } from './backup/backups.js'
import type { Part } from './lifecycle.js'
import type { DrainerObserver } from './pipeline/hint-drainer.js'
import type { ReplicationObserver } from './replication/gate.js'
import type { EventStore } from './store/event-store.js'

/** Kinds the platform counts one by one; every other kind is counted by its NIP-01 class. */
const NAMED_KINDS = new Set([0, 1, 3, 5, 7, 443, 444, 445, 446, 1059, 10002, 22242, 30443])

/**
 * The `kind` label of an event: the decimal kind for a kind the platform cares about, else its class
 * (`replaceable`, `ephemeral`, `addressable`, `regular`), or `unknown` when it is no kind at all, so
 * clients cannot add label values.
 */
export const kindLabel = (kind: unknown): string => {
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > 65535) return 'unknown'
  if (NAMED_KINDS.has(kind)) return String(kind)
  if (isEphemeral(kind)) return 'ephemeral'
  if (isAddressable(kind)) return 'addressable'
  return isReplaceable(kind) ? 'replaceable' : 'regular'
}

/** The relay's Prometheus metrics, on a registry of its own. */
export const createRelayMetrics = (now: () => number = Date.now) => {
  const metrics = createMetrics({ prefix: 'msr_relay_' })
  const handles = {
    metrics,
    connections: metrics.gauge('connections', 'Open WebSocket connections.'),
    connectionsTotal: metrics.counter('connections_total', 'WebSocket connections accepted since start.'),
    messages: metrics.counter('messages_total', 'Client messages received, by verb.', ['verb']),
    events: metrics.counter(
      'events_total',
      'EVENT outcomes (stored, duplicate, ephemeral, or the refusal prefix), by kind (a listed kind or its class, see kindLabel).',
      ['kind', 'outcome'],
    ),
    writeSeconds: metrics.histogram('write_seconds', 'Time from submit to commit of an event.', [], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
    querySeconds: metrics.histogram('query_seconds', 'Time to answer a REQ backfill or COUNT.', ['verb'], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
    deliveries: metrics.counter('fanout_deliveries_total', 'Events delivered to live subscriptions.'),
    subscriptions: metrics.gauge('subscriptions', 'Open subscriptions.'),
    filterValues: metrics.gauge('subscription_filter_values', 'Filter values (ids, authors, kinds, tag values) held by open subscriptions.'),
    reqPages: metrics.counter(
      'req_pages_total',
      'REQ backfill pages answered, by the thread that scanned them: the event loop (a connection querying alone, data.query_inline) or a query worker.',
      ['thread'],
    ),
    backfillsAllocated: metrics.counter(
      'backfills_allocated_total',
      'REQ backfills too large for a slab of the shared arena, or sent while every slab was in use: a buffer was allocated instead (garbage for the event loop to collect).',
    ),
    drops: metrics.counter('client_drops_total', 'Clients disconnected by the relay, by cause.', ['cause']),
    expired: metrics.counter('expired_deleted_total', 'NIP-40 expired events deleted by the sweeper.'),
    authFailures: metrics.counter('auth_failures_total', 'Refused NIP-42 AUTH messages, by failed check.', ['reason']),
    authSuccesses: metrics.counter('auth_successes_total', 'Accepted NIP-42 AUTH messages.'),
    rateLimited: metrics.counter('rate_limited_total', 'Messages refused by a rate limit, by rule.', ['rule']),
    refusedConnections: metrics.counter('refused_connections_total', 'WebSocket upgrades refused, by reason.', ['reason']),
    hintOutbox: metrics.gauge('hint_outbox_depth', 'Routing hints (445/446) committed but not yet confirmed by the bus.'),
    hintPublishSeconds: metrics.histogram('hint_publish_seconds', 'Time from publish to the bus confirming one hint, by kind.', ['kind'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]),
    hintPublishLagSeconds: metrics.histogram(
      'hint_publish_lag_seconds',
      "Time from the event's created_at to the bus confirming its hint, by kind (the outbox keeps no commit time, so the client's clock skew counts).",
      ['kind'],
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    ),
    hintsPublished: metrics.counter('hints_published_total', 'Hints the bus confirmed, by kind.', ['kind']),
    hintPublishFailures: metrics.counter('hint_publish_failures_total', 'Failed hint publishes (each retried later), by kind.', ['kind']),
    hintsDropped: metrics.counter('hints_dropped_total', 'Outbox entries that no longer parse, removed unpublished.'),
    replicationOutbox: metrics.gauge('replication_outbox_depth', "Events accepted here and committed but not yet confirmed by the replication bus ([replication]; sampled)."),
    replicationPublished: metrics.counter('replication_published_total', "This replica's events the replication bus confirmed."),
    replicationPublishFailures: metrics.counter('replication_publish_failures_total', 'Failed publishes to the replication topic (a stored event is retried; an ephemeral one is not).'),
    replicationPublishSeconds: metrics.histogram(
      'replication_publish_seconds',
      'Time from publish to the replication bus confirming one event (what an OK waits for beyond the commit).',
      [],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 10],
    ),
    replicationOkTimeouts: metrics.counter(
      'replication_ok_timeouts_total',
      'EVENTs answered without the bus confirming them within ack_timeout, by on_bus_outage (refuse: OK false "error:"; local: OK true on the local commit).',
      ['on_bus_outage'],
    ),
    replicationOutage: metrics.gauge('replication_bus_outage', '1 while the replication bus fails publishes or leaves them unconfirmed past ack_timeout, 0 once it confirms again.'),
    replicationReceived: metrics.counter(
      'replication_received_total',
      "Messages from this replica's subscription, by outcome (own, stored, duplicate, rejected, ephemeral, invalid, failed).",
      ['outcome'],
    ),
    replicationLagSeconds: metrics.histogram(
      'replication_apply_lag_seconds',
      "Time from another replica's event reaching the bus to its commit here (the bus's publish time; clocks of the two hosts).",
      [],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
    replicationReady: metrics.gauge(
      'replication_ready',
      '1 once this replica has caught up with the replication topic since its start (/readyz waits for it), 0 before; 1 without replication.',
    ),
    replicationCatchUpBacklog: metrics.gauge(
      'replication_catch_up_backlog',
      'Messages published before this replica started that it received while catching up (grows during a bootstrap; kept once ready).',
    ),
    replicationCatchUpSeconds: metrics.gauge('replication_catch_up_seconds', 'Seconds from the subscriber starting (after the restore and the seek) to caught up; 0 until then.'),
    snapshots: metrics.counter('snapshots_total', 'Snapshots to [backup] target, by outcome (written, failed).', ['outcome']),
    snapshotSeconds: metrics.histogram('snapshot_seconds', 'Time to write one snapshot.', [], [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
    snapshotEvents: metrics.gauge('snapshot_events', 'Events in the last snapshot written.'),
    lastSnapshot: metrics.gauge('last_snapshot_timestamp_seconds', 'When the last snapshot was written (unix seconds); alert on its age against [backup] interval.'),
    snapshotAge: metrics.gauge(
      'snapshot_age_seconds',
      'Seconds since this process last wrote a snapshot, or since it started when it has written none (set at each scrape).',
    ),
    /** When the last snapshot was written, or the metrics were created (unix seconds): what snapshot_age_seconds counts from. */
    snapshotBase: { seconds: now() / 1000 },
    internalErrors: metrics.counter(
      'internal_errors_total',
      'Failures the relay answered with "error:" or caught at the top, by where (event, write, req, count, auth, handler, unhandled_rejection, uncaught_exception).',
      ['where'],
    ),
    storedEvents: metrics.gauge('stored_events', 'Events in the store (sampled).'),
    storeUsed: metrics.gauge('store_used_bytes', 'Bytes of LMDB pages holding data (sampled; freed pages LMDB reuses are not counted, the file never shrinks).'),
    storeMax: metrics.gauge('store_max_bytes', 'The store cap in force, data.max_size or with data.write_map at most 90 % of its tmpfs: past store_used_bytes of this, EVENTs are refused "error:" (0: no cap).'),
    reloads: metrics.counter('config_reloads_total', 'Configuration reloads (--watch), by outcome.', ['outcome']),
  }
  handles.replicationReady.set(1) // nothing to catch up with until replication says otherwise
  return handles
}

/** The relay's metric handles. */
export type RelayMetrics = ReturnType<typeof createRelayMetrics>

/** The hint drainer's outcomes as metrics. */
export const drainerObserver = (metrics: RelayMetrics, now: () => number = Date.now): DrainerObserver => {
  const kind = (hint: Hint) => ({ kind: String(hint.kind) })
  return {
    published: (hint, seconds) => {
      metrics.hintsPublished.inc(kind(hint))
      metrics.hintPublishSeconds.observe(kind(hint), seconds)
      metrics.hintPublishLagSeconds.observe(kind(hint), Math.max(0, now() / 1000 - hint.created_at))
    },
    failed: hint => metrics.hintPublishFailures.inc(kind(hint)),
    dropped: () => metrics.hintsDropped.inc(),
  }
}

/** The replication parts' outcomes as metrics. */
export const replicationObserver = (metrics: RelayMetrics): ReplicationObserver => ({
  published: seconds => (metrics.replicationPublished.inc(), metrics.replicationPublishSeconds.observe(seconds)),
  publishFailed: () => metrics.replicationPublishFailures.inc(),
  okTimedOut: mode => metrics.replicationOkTimeouts.inc({ on_bus_outage: mode }),
  outage: on => metrics.replicationOutage.set(on ? 1 : 0),
  received: (outcome, lagSeconds) => {
    metrics.replicationReceived.inc({ outcome })
    if (lagSeconds !== undefined && outcome === 'stored') metrics.replicationLagSeconds.observe(lagSeconds)
  },
  catchingUp: backlog => (metrics.replicationReady.set(0), metrics.replicationCatchUpBacklog.set(backlog)),
  caughtUp: (seconds, backlog) => {
    metrics.replicationCatchUpBacklog.set(backlog)
    metrics.replicationCatchUpSeconds.set(seconds)
    metrics.replicationReady.set(1)
  },
})

/** The snapshot loop's outcomes as metrics. */
export const backupObserver = (metrics: RelayMetrics, now: () => number = Date.now): BackupObserver => ({
  snapshot: (outcome, seconds, events) => {
    metrics.snapshots.inc({ outcome })
    if (outcome !== 'written') return
    metrics.snapshotSeconds.observe(seconds)
    metrics.snapshotEvents.set(events)
    metrics.snapshotBase.seconds = now() / 1000
    metrics.lastSnapshot.set(metrics.snapshotBase.seconds)
  },
})

/** How often the store's gauges are read between scrapes. */
const SAMPLE_EVERY_MS = 15_000

/** Sets the sampled gauges (outbox depth, stored events, snapshot age) on every scrape and every 15 s, as a part of the relay. */
export class MetricsSampler implements Part {
  readonly name = 'metrics sampler'
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly metrics: RelayMetrics,
    private readonly store: EventStore,
    private readonly now: () => number = Date.now,
    /** The store cap in force (0: none): `data.max_size`, lowered by a writable map's (write-map.ts). */
    private readonly maxBytes: () => number = () => 0,
  ) {}

  start(): void {
    this.sample()
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS)
    this.timer.unref()
  }

  /** Sets the gauges now. */
  sample(): void {
    this.metrics.hintOutbox.set(this.store.outbox.size())
    if (this.store.replicating) this.metrics.replicationOutbox.set(this.store.replication.size())
    this.metrics.storedEvents.set(this.store.size())
    this.metrics.storeUsed.set(this.store.usedBytes())
    this.metrics.storeMax.set(this.maxBytes())
    this.metrics.snapshotAge.set(Math.max(0, this.now() / 1000 - this.metrics.snapshotBase.seconds))
  }

  /** The Prometheus text, gauges sampled first. */
  async render(): Promise<{ body: string; contentType: string }> {
    this.sample()
    return { body: await this.metrics.metrics.render(), contentType: this.metrics.metrics.contentType }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
  }
}
