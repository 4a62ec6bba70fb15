#!/usr/bin/env node
// The mailbox API benchmark (issue 4): the real API as a child process on its embedded PostgreSQL, keep-alive
// HTTP clients, a fresh NIP-98 header per request. Order: start the API → warm-up → 1. deposits → 2. pickups
// (GET pages + acks) → 3. mixed → stop. Deposits are signed on worker threads just before their phase.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  generateSecrets, int, loadProfiles, loadSigner, machineInfo, measureMachineSpeed, nowUs, otherProcessesText, printFigureTable, processMemoryMiB, profileDir, resultsReplacer, runMain, sec,
  stopOnInterrupt, summarize as summarizeLatencies, UsageError, type Figure, type MachineSpeed, type Phase,
} from '@msr/bench'
import { startApiProcess, type ApiProcess } from './api-process.js'
import { failureCount, type Tally } from './driver.js'
import { createClient, type HttpClient } from './http-client.js'
import { fileSystemOf, startCpuShare, type CpuShare } from './machine.js'
import type { Recipient } from './mailbox-readers.js'
import { cpuCount, parseBenchOptions, USAGE, type BenchOptions } from './options.js'
import { connectPgStats, type DbWork, type PgStats } from './pg-stats.js'
import * as report from './report.js'
import { keyringOf } from './request-factory.js'
import { prepareDeposits, runDeposits, runMixed, runPickups, type PickupRun } from './scenarios.js'
import { SignPool } from './sign-pool.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** What a run drives the API with. */
interface Rig {
  api: ApiProcess
  client: HttpClient
  signer: SignPool
  stats: PgStats
  recipients: Recipient[]
  options: BenchOptions
  /** CPUs the API and its PostgreSQL may use: the pinned set, else the machine's. */
  apiCores: number
}

interface Results {
  deposits?: { tally: Tally; cpu: CpuShare; db: DbWork | undefined }
  pickups?: { run: PickupRun; expected: number; cpu: CpuShare; db: DbWork | undefined }
  mixed?: { run: PickupRun; expected: number; cpu: CpuShare; db: DbWork | undefined }
}

/** The span of every timed phase (to select the API's profile samples). */
const phases: Phase[] = []

/** Runs a timed phase: its span, the CPU of every party and PostgreSQL's counters around it. */
const measure = async <T>(rig: Rig, name: string, step: () => Promise<T>): Promise<{ value: T; cpu: CpuShare; db: DbWork | undefined }> => {
  const endDb = await rig.stats.start()
  const endCpu = startCpuShare(rig.api.pid)
  const fromUs = nowUs()
  const value = await step()
  phases.push({ name, fromUs, toUs: nowUs() })
  const cpu = endCpu()
  return { value, cpu, db: await endDb() }
}

/** Deposits i ∈ [start, start + count), signed now. */
const sign = async (rig: Rig, start: number, count: number, label: string) => {
  const { recipients, senders, contentBytes } = rig.options
  const prepared = await prepareDeposits(rig.signer, { start, count, recipients, senders, contentBytes })
  report.printUntimed('signed', `${int(count)} deposits for ${label} in ${sec(prepared.seconds)} (not timed)`)
  return prepared.requests
}

/** Untimed deposits, then one pickup pass: JIT, both connection pools and the caches warm, mailboxes empty again. */
const warmUp = async (rig: Rig): Promise<void> => {
  const { options } = rig
  if (options.warmup === 0) return
  const started = performance.now()
  const deposits = await runDeposits(rig.client, rig.signer, await sign(rig, 0, options.warmup, 'the warm-up'), options.clients)
  const pickups = await runPickups(rig.client, rig.signer, rig.recipients, options.limit, options.clients)
  const failures = [deposits, pickups.tally].flatMap(t => Object.values(t.ops)).flatMap(op => [...op.failures])
  const count = failures.reduce((sum, [, f]) => sum + f.count, 0)
  report.printUntimed('warm-up', `${int(options.warmup)} deposits, picked up and acked in ${sec((performance.now() - started) / 1000)} (not timed); ${count} failures`)
  for (const [key, f] of failures) report.printUntimed('  failed', `${int(f.count)} × ${key}: e.g. "${f.example}"`)
  if (deposits.ops.deposit.failures.size > 0 && !deposits.ops.deposit.statuses.has(201)) throw new Error('every warm-up deposit failed; nothing to measure')
}

const scenarios = async (rig: Rig, results: Results): Promise<void> => {
  const { options } = rig
  await warmUp(rig)

  const deposits = await sign(rig, options.warmup, options.deposits, 'phase 1')
  const d = await measure(rig, '1. deposits', () => runDeposits(rig.client, rig.signer, deposits, options.clients))
  results.deposits = { tally: d.value, cpu: d.cpu, db: d.db }
  report.printDeposits(d.value, options.clients, options.contentBytes, d.cpu, d.db, rig.apiCores)

  const deposited = d.value.ops.deposit.statuses.get(201) ?? 0
  const p = await measure(rig, '2. pickups', () => runPickups(rig.client, rig.signer, rig.recipients, options.limit, options.clients))
  results.pickups = { run: p.value, expected: deposited, cpu: p.cpu, db: p.db }
  report.printPickups(p.value, deposited, options.recipients, options.limit, options.clients, p.cpu, p.db, rig.apiCores)

  const mixedDeposits = await sign(rig, options.warmup + options.deposits, options.mixedDeposits, 'phase 3')
  const lanes = { limit: options.limit, depositLanes: Math.ceil(options.clients / 2), pickupLanes: Math.floor(options.clients / 2) }
  const m = await measure(rig, '3. mixed', () => runMixed(rig.client, rig.signer, mixedDeposits, rig.recipients, lanes))
  const mixedDeposited = m.value.tally.ops.deposit.statuses.get(201) ?? 0
  results.mixed = { run: m.value, expected: mixedDeposited, cpu: m.cpu, db: m.db }
  report.printMixed(m.value, mixedDeposits.length, lanes, m.cpu, m.db, rig.apiCores)
}

/** Faults: answers other than the expected status, items not picked up exactly once. */
const faultsOf = (results: Results): number => {
  const missing = (r: { run: PickupRun; expected: number } | undefined) =>
    r ? Math.abs(r.expected - r.run.readers.picked + r.run.readers.duplicates) + r.run.readers.duplicates + r.run.readers.badPages : 0
  const tallies = [results.deposits?.tally, results.pickups?.run.tally, results.mixed?.run.tally].flatMap(t => (t ? [t] : []))
  return tallies.reduce((sum, t) => sum + failureCount(t), 0) + missing(results.pickups) + missing(results.mixed)
}

/** One line per headline figure. */
const summaryLines = (results: Results, faults: number, apiCores: number): string[] => {
  const lines: string[] = []
  const rate = (t: Tally) => report.requestsOf(t) / report.secondsOf(t)
  const met = (r: number) => `target ≥ ${int(report.TARGET_PER_SECOND)}: ${r >= report.TARGET_PER_SECOND ? 'met' : 'MISSED'}`
  const { deposits: d, pickups: p, mixed: m } = results
  if (d) lines.push(`deposits  ${int(rate(d.tally))} authenticated requests/s (${met(rate(d.tally))})`)
  if (p) lines.push(`pickups   ${int(rate(p.run.tally))} authenticated requests/s, GET pages + acks (${met(rate(p.run.tally))})`)
  if (m) lines.push(`mixed     ${int(rate(m.run.tally))} authenticated requests/s, deposits + GET pages + acks (${met(rate(m.run.tally))})`)
  const capacity = m && report.capacityOf(m.cpu, report.requestsOf(m.run.tally), apiCores)
  if (capacity) lines.push(`capacity  mixed ≈ ${int(capacity.rate)} requests/s for the API and PostgreSQL on ${apiCores} core${apiCores === 1 ? '' : 's'} of their own, projected from their CPU time (${met(capacity.rate)})`)
  const others = otherProcessesText([d?.cpu, p?.cpu, m?.cpu].flatMap(c => (c ? [c] : [])))
  if (others) lines.push(`machine   ${others}`)
  if (faults > 0) lines.push(`FAULTS    ${faults} failed requests or items not picked up exactly once (exit code 1)`)
  return lines
}

/** The run's figures, as the table that ends the report (and the JSON's `figures`): rates, p99s, the projection. */
const figuresOf = (results: Results, machine: MachineSpeed, apiCores: number): Figure[] => {
  const figures: Figure[] = []
  const add = (figure: string, value: number | undefined, unit: string) => void (value !== undefined && figures.push({ figure, value, unit }))
  const rate = (t: Tally) => report.requestsOf(t) / report.secondsOf(t)
  const p99 = (latencies: readonly number[]) => (latencies.length > 0 ? summarizeLatencies(latencies).p99 : undefined)
  const { deposits: d, pickups: p, mixed: m } = results
  if (d) {
    add('deposits', rate(d.tally), 'requests/s')
    add('deposit latency p99', p99(d.tally.ops.deposit.latencies), 'ms')
  }
  if (p) {
    add('pickups (GET pages + acks)', rate(p.run.tally), 'requests/s')
    add('ack latency p99', p99(p.run.tally.ops.ack.latencies), 'ms')
  }
  if (m) {
    const requests = report.requestsOf(m.run.tally)
    add('mixed (deposits + GET pages + acks)', rate(m.run.tally), 'requests/s')
    add('mixed: deposit latency p99', p99(m.run.tally.ops.deposit.latencies), 'ms')
    add(`mixed: capacity, API and PostgreSQL on ${apiCores} core${apiCores === 1 ? '' : 's'} of their own`, report.capacityOf(m.cpu, requests, apiCores)?.rate, 'requests/s')
    add('mixed: API main thread CPU per request', m.cpu.apiMainThreadSeconds === undefined ? undefined : (1000 * m.cpu.apiMainThreadSeconds) / requests, 'ms')
  }
  // Last: what the figures above were measured on (compare runs of different days only at like readings).
  add('machine: JavaScript work unit', machine.workMicros, 'µs')
  add('machine: loopback round trip p50', machine.roundTripMicros.p50, 'µs')
  return figures
}

/** Pins this process and every thread it has (and, inherited, every thread it starts later) to `cpus`. */
const pinGenerator = (cpus: string): void => void execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' })

const main = async (): Promise<number> => {
  let options: BenchOptions
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`bench: ${error.message}\n(node services/mailbox-api/dist/bench/bench.js --help lists the options)\n`)
    return 2
  }
  if (options.help) return void process.stdout.write(USAGE), 0
  // Before pinning: the machine's cores, not the generator's share of them.
  const machine = machineInfo()
  const speed = await measureMachineSpeed()
  if (options.generatorCpus) pinGenerator(options.generatorCpus)
  report.printHeader(machine, speed, options.quick, { api: options.apiCpus, generator: options.generatorCpus })
  const profDir = profileDir(options.cpuProf, 'msr-mailbox-bench-prof-')
  const cli = options.cli ? resolve(options.cli) : CLI
  const api = await startApiProcess({ cli, env: process.env, logLevel: options.apiLogLevel, rateLimit: options.rateLimit, cpuProfDir: profDir, cpus: options.apiCpus, parentDir: options.storeDir })
  const offInterrupt = stopOnInterrupt(api.stop)

  const secrets = generateSecrets(options.recipients + options.senders)
  const keys = keyringOf(secrets.slice(0, options.recipients), loadSigner())
  const recipients = keys.pubkeys.map((pubkey, key) => ({ key, pubkey }))
  const threads = availableParallelism()
  const rig: Rig = { api, client: createClient(api.port, options.clients), signer: SignPool.start(secrets, api.url, threads), stats: await connectPgStats(api.pgPort), recipients, options,
    apiCores: options.apiCpus ? cpuCount(options.apiCpus) : machine.cores }
  report.printApi(api, {
    cli, fileSystem: fileSystemOf(api.dataDir), rateLimit: options.rateLimit, poolSize: process.env.DB_POOL_SIZE || '10 (default)', clients: options.clients,
    recipients: options.recipients, senders: options.senders, contentBytes: options.contentBytes, profDir,
  })
  report.printUntimed('signing', `bcrypto-native on ${threads} worker threads: deposits ahead of their phase, pages and acks on demand (ids and cursors come from the API)`)

  const results: Results = {}
  let peakRss: number | undefined
  let dataMiB = 0
  let stop: Awaited<ReturnType<ApiProcess['stop']>>
  try {
    await scenarios(rig, results)
    peakRss = processMemoryMiB(api.pid, 'VmHWM')
    dataMiB = api.dataMiB()
  } finally {
    await rig.stats.close()
    rig.client.close()
    await rig.signer.close()
    stop = await api.stop()
    offInterrupt()
  }
  if (profDir) report.printProfiles(phases, loadProfiles(profDir))
  const faults = faultsOf(results)
  report.printClosing(api, stop, peakRss, dataMiB, summaryLines(results, faults, rig.apiCores))
  const figures = figuresOf(results, speed, rig.apiCores)
  printFigureTable(figures, `the bench's mailbox API child, ${api.url}`)
  if (options.json) writeFileSync(options.json, JSON.stringify({ options, machine: speed, results, figures }, resultsReplacer('latencies'), 2))
  return faults > 0 ? 1 : 0
}

runMain(main)
