import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Hint } from '@msr/hints'
import { backupObserver, createRelayMetrics, drainerObserver, kindLabel, MetricsSampler } from './metrics.js'
import type { EventStore } from './store/event-store.js'

/** The value of one sample line (`name{labels} value`) in the Prometheus text. */
const sample = async (metrics: ReturnType<typeof createRelayMetrics>, series: string): Promise<number | undefined> => {
  const line = (await metrics.metrics.render()).split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('kindLabel', () => {
  it('names each kind the platform cares about by its number', () => {
    for (const kind of [0, 1, 3, 5, 7, 443, 444, 445, 446, 1059, 10002, 22242, 30443]) assert.equal(kindLabel(kind), String(kind))
  })

  it('counts every other kind by its NIP-01 class', () => {
    assert.equal(kindLabel(2), 'regular')
    assert.equal(kindLabel(9735), 'regular')
    assert.equal(kindLabel(40000), 'regular')
    assert.equal(kindLabel(65535), 'regular')
    assert.equal(kindLabel(10000), 'replaceable')
    assert.equal(kindLabel(19999), 'replaceable')
    assert.equal(kindLabel(20000), 'ephemeral')
    assert.equal(kindLabel(29999), 'ephemeral')
    assert.equal(kindLabel(30000), 'addressable')
    assert.equal(kindLabel(39999), 'addressable')
  })

  it('answers `unknown` for anything that is no kind, so clients cannot add label values', () => {
    for (const kind of [undefined, null, '1', -1, 1.5, 65536, Number.NaN, Infinity, {}]) assert.equal(kindLabel(kind), 'unknown')
    const labels = new Set(Array.from({ length: 70_000 }, (_, kind) => kindLabel(kind)))
    assert.equal(labels.size, 13 + 5)
  })
})

describe('hint publish lag', () => {
  it("observes the seconds from the event's created_at to the bus confirming it", async () => {
    const metrics = createRelayMetrics()
    const now = 1_700_000_042_000
    const hint: Hint = { v: 1, id: 'a'.repeat(64), kind: 445, pubkey: 'b'.repeat(64), created_at: 1_700_000_000, group: 'g', epoch: 1 }
    const observer = drainerObserver(metrics, () => now)
    observer.published(hint, 0.01)
    observer.published({ ...hint, created_at: 1_700_000_100 }, 0.01)
    assert.equal(await sample(metrics, 'msr_relay_hint_publish_lag_seconds_sum{kind="445"}'), 42)
    assert.equal(await sample(metrics, 'msr_relay_hint_publish_lag_seconds_count{kind="445"}'), 2)
    assert.equal(await sample(metrics, 'msr_relay_hint_publish_lag_seconds_bucket{le="60",kind="445"}'), 2)
    assert.equal(await sample(metrics, 'msr_relay_hint_publish_lag_seconds_bucket{le="30",kind="445"}'), 1, 'a created_at in the future counts as 0')
  })
})

describe('snapshot age', () => {
  const store = { outbox: { size: () => 0 }, size: () => 0, usedBytes: () => 0 } as unknown as EventStore

  it('is the seconds since the last snapshot written, or since start before the first one, set at each sample', async () => {
    let now = 1_000_000
    const metrics = createRelayMetrics(() => now)
    const sampler = new MetricsSampler(metrics, store, () => now)
    now += 30_000
    sampler.sample()
    assert.equal(await sample(metrics, 'msr_relay_snapshot_age_seconds'), 30)
    backupObserver(metrics, () => now).snapshot('written', 1, 10)
    now += 5_000
    sampler.sample()
    assert.equal(await sample(metrics, 'msr_relay_snapshot_age_seconds'), 5)
    backupObserver(metrics, () => now).snapshot('failed', 1, 0)
    now += 5_000
    sampler.sample()
    assert.equal(await sample(metrics, 'msr_relay_snapshot_age_seconds'), 10, 'a failed snapshot does not reset the age')
    assert.equal(await sample(metrics, 'msr_relay_last_snapshot_timestamp_seconds'), 1_030)
  })
})
