import type { Hint } from '@msr/hints'
import { createMetrics } from '@msr/telemetry'
import type { BackupObserver } from './backup/backups.js'
import type { Part } from './lifecycle.js'
import type { DrainerObserver } from './pipeline/hint-drainer.js'
import type { EventStore } from './store/event-store.js'

/** The relay's Prometheus metrics, on a registry of its own. */
export const createRelayMetrics = () => {
  const metrics = createMetrics({ prefix: 'msr_relay_' })
  return {
    metrics,
    connections: metrics.gauge('connections', 'Open WebSocket connections.'),
    connectionsTotal: metrics.counter('connections_total', 'WebSocket connections accepted since start.'),
    messages: metrics.counter('messages_total', 'Client messages received, by verb.', ['verb']),
    events: metrics.counter('events_total', 'EVENT outcomes: stored, duplicate, ephemeral, or rejected by reason prefix.', ['outcome']),
    writeSeconds: metrics.histogram('write_seconds', 'Time from submit to commit of an event.', [], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
    querySeconds: metrics.histogram('query_seconds', 'Time to answer a REQ backfill or COUNT.', ['verb'], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
    deliveries: metrics.counter('fanout_deliveries_total', 'Events delivered to live subscriptions.'),
    subscriptions: metrics.gauge('subscriptions', 'Open subscriptions.'),
    filterValues: metrics.gauge('subscription_filter_values', 'Filter values (ids, authors, kinds, tag values) held by open subscriptions.'),
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
    hintsPublished: metrics.counter('hints_published_total', 'Hints the bus confirmed, by kind.', ['kind']),
    hintPublishFailures: metrics.counter('hint_publish_failures_total', 'Failed hint publishes (each retried later), by kind.', ['kind']),
    hintsDropped: metrics.counter('hints_dropped_total', 'Outbox entries that no longer parse, removed unpublished.'),
    snapshots: metrics.counter('snapshots_total', 'Snapshots to [backup] target, by outcome (written, failed).', ['outcome']),
    snapshotSeconds: metrics.histogram('snapshot_seconds', 'Time to write one snapshot.', [], [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
    snapshotEvents: metrics.gauge('snapshot_events', 'Events in the last snapshot written.'),
    lastSnapshot: metrics.gauge('last_snapshot_timestamp_seconds', 'When the last snapshot was written (unix seconds); alert on its age against [backup] interval.'),
    internalErrors: metrics.counter(
      'internal_errors_total',
      'Failures the relay answered with "error:" or caught at the top: where (event, write, req, count, auth, handler, process).',
      ['where'],
    ),
    storedEvents: metrics.gauge('stored_events', 'Events in the store (sampled).'),
    reloads: metrics.counter('config_reloads_total', 'Configuration reloads (--watch), by outcome.', ['outcome']),
  }
}

/** The relay's metric handles. */
export type RelayMetrics = ReturnType<typeof createRelayMetrics>

/** The hint drainer's outcomes as metrics. */
export const drainerObserver = (metrics: RelayMetrics): DrainerObserver => {
  const kind = (hint: Hint) => ({ kind: String(hint.kind) })
  return {
    published: (hint, seconds) => (metrics.hintsPublished.inc(kind(hint)), metrics.hintPublishSeconds.observe(kind(hint), seconds)),
    failed: hint => metrics.hintPublishFailures.inc(kind(hint)),
    dropped: () => metrics.hintsDropped.inc(),
  }
}

/** The snapshot loop's outcomes as metrics. */
export const backupObserver = (metrics: RelayMetrics): BackupObserver => ({
  snapshot: (outcome, seconds, events) => {
    metrics.snapshots.inc({ outcome })
    if (outcome !== 'written') return
    metrics.snapshotSeconds.observe(seconds)
    metrics.snapshotEvents.set(events)
    metrics.lastSnapshot.set(Date.now() / 1000)
  },
})

/** How often the store's gauges are read between scrapes. */
const SAMPLE_EVERY_MS = 15_000

/** Reads the store's gauges (outbox depth, stored events) on every scrape and every 15 s, as a part of the relay. */
export class MetricsSampler implements Part {
  readonly name = 'metrics sampler'
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly metrics: RelayMetrics,
    private readonly store: EventStore,
  ) {}

  start(): void {
    this.sample()
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS)
    this.timer.unref()
  }

  /** Sets the gauges now. */
  sample(): void {
    this.metrics.hintOutbox.set(this.store.outbox.size())
    this.metrics.storedEvents.set(this.store.size())
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
