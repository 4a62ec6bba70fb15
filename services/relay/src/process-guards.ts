import type { Logger } from '@msr/telemetry'

/** What escaped every handler: a promise rejected with no one listening, or an exception thrown to the top. */
export type Escape = 'unhandled_rejection' | 'uncaught_exception'

/**
 * The last resort of `msr-relay serve`: what escapes every handler is logged (CRITICAL, with the stack,
 * never content) and counted, and the relay keeps serving. On Cloud Run the disk is memory: a crashed
 * instance loses every event since its last snapshot, so staying up is the safer failure. Returns a
 * function that removes the handlers.
 */
export const installProcessGuards = (logger: Logger, count: (escape: Escape) => void): (() => void) => {
  const onRejection = (reason: unknown) => {
    count('unhandled_rejection')
    logger.fatal({ err: reason, escape: 'unhandled_rejection' }, 'a promise rejection escaped every handler; the relay keeps serving')
  }
  const onException = (error: Error) => {
    count('uncaught_exception')
    logger.fatal({ err: error, escape: 'uncaught_exception' }, 'an exception escaped every handler; the relay keeps serving')
  }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return () => {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }
}
