import type { Logger } from '@msr/telemetry'
import type { ReplicationBus } from './bus.js'

/** Where a replica started on an empty store seeks its subscription, and why. */
export interface BootstrapPlan {
  /** When the restored snapshot (the oldest one restored) was started; undefined when none was. */
  snapshotStartedAt: Date | undefined
  /** `[replication] seek_margin`. */
  marginMs: number
}

/**
 * The seek time of an empty replica: `margin` before the restored snapshot was started (what another
 * replica had published but the snapshot's writer had not applied yet is replayed), or with no snapshot the
 * Unix epoch, i.e. everything the topic still retains (Pub/Sub marks messages published after the time as
 * unacknowledged, older ones as acknowledged).
 */
export const seekTimeOf = (plan: BootstrapPlan): Date => (plan.snapshotStartedAt ? new Date(plan.snapshotStartedAt.getTime() - plan.marginMs) : new Date(0))

/**
 * Bootstraps an empty replica: its subscription exists (the bus started first) and the newest snapshot is
 * restored; this seeks the subscription back so the backlog from before the snapshot is applied again
 * (idempotent: duplicates are acknowledged and dropped). The subscriber starts after it.
 */
export const seekBack = async (bus: ReplicationBus, plan: BootstrapPlan, logger: Logger): Promise<Date> => {
  const to = seekTimeOf(plan)
  await bus.seek(to)
  logger.info(
    { subscription: bus.subscriptionName, snapshotStartedAt: plan.snapshotStartedAt?.toISOString() ?? null, seekTo: to.toISOString() },
    plan.snapshotStartedAt ? 'replication bootstrap: sought the subscription back to before the restored snapshot' : 'replication bootstrap: no snapshot; sought the subscription to the start of the topic\'s retention',
  )
  return to
}
