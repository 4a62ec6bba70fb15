import { createMetrics } from '@msr/telemetry'

/** The mailbox API's Prometheus metrics, on a registry of its own. */
export const createMailboxMetrics = (opts: { defaultMetrics?: boolean } = {}) => {
  const metrics = createMetrics({ prefix: 'msr_mailbox_', defaultMetrics: opts.defaultMetrics ?? true })
  return {
    metrics,
    deposits: metrics.counter('deposits_total', 'Mailbox items deposited, by kind (keypackage, welcome).', ['kind']),
    pickups: metrics.counter('pickups_total', 'Mailbox items returned to their recipient, by kind.', ['kind']),
    acks: metrics.counter('acks_total', 'Mailbox items acknowledged (deleted), by kind.', ['kind']),
    expiries: metrics.counter('expiries_total', 'Expired rows purged by the janitor, by table.', ['kind']),
    authFailures: metrics.counter('auth_failures_total', 'Refused NIP-98 or admin authentications, by reason.', ['reason']),
    rateLimited: metrics.counter('rate_limited_total', 'Requests refused by a rate limit, by scope (ip, pubkey).', ['scope']),
    groupUpserts: metrics.counter('group_upserts_total', 'Group registry upserts, by source (admin, hint).', ['source']),
    hints: metrics.counter('hints_total', 'Hints received (push or pull), by kind (445, 446, unknown) and outcome (applied, duplicate, malformed).', ['kind', 'outcome']),
    hintDeliverySeconds: metrics.histogram(
      'hint_delivery_seconds',
      "Time from the event's created_at to its hint updating the registry (applied), by kind: the hint bus's delivery delay end to end (outbox, bus, push), client clock skew included.",
      ['kind'],
      [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    ),
    pushAuthFailures: metrics.counter('push_auth_failures_total', 'Refused hint pushes, by reason.', ['reason']),
    gateBatchSize: metrics.histogram('auth_gate_batch_size', 'Authenticated requests per NIP-98 gate statement (replay guard and budgets; batched while statements are in flight).', [], [1, 2, 4, 8, 16, 32, 64, 128]),
    // The same count as request_seconds_count, as a counter: Cloud Monitoring keeps a histogram as one
    // distribution, and a request-based SLO's good/total ratio takes counters only (infra/monitoring/slos.yaml).
    requests: metrics.counter('requests_total', 'HTTP requests answered, by method, route and status.', ['method', 'route', 'status']),
    requestSeconds: metrics.histogram('request_seconds', 'HTTP request latency.', ['method', 'route', 'status'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]),
  }
}

/** The mailbox API's metric handles. */
export type MailboxMetrics = ReturnType<typeof createMailboxMetrics>
