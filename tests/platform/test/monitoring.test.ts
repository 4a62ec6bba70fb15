// The SRE's kit (infra/monitoring) checked offline: the generated Prometheus rules and Grafana dashboards
// are current; every alert, SLO and dashboard query parses and names only metrics, labels, buckets and jobs
// that the running services export (scraped from both, started with npm start); alerts link to runbook
// sections; docs/slo.md lists every SLO and alert threshold; the Terraform reads the same files and ships
// the metrics with the Managed Service for Prometheus sidecar; docker-compose's Prometheus uses the
// services' metrics keys. And two incidents driven for real, each alert's own expression evaluated over
// scraped samples: the mailbox down while 445s arrive (the outbox alert crosses its threshold, then clears),
// and a relay's store filling up to its cap (the store alert quiet under its threshold, firing at the cap).
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { checkExpression, JOBS, kitExpressions, loadGenerator, type Exported, type Generator, type Kit } from './monitoring-kit.js'
import { evaluate, inventory, parsePromql, SampleStore, selectors } from './promql.js'
import {
  eventually,
  freePort,
  MAILBOX_CLI,
  newSigner,
  RELAY_CLI,
  RelayClient,
  removeDir,
  ROOT,
  sign,
  sleep,
  spawnService,
  START,
  tempDir,
  waitReady,
  type Service,
} from './platform.js'
import { appContainer, child, children, loadTerraform, resource, type Block, type Terraform } from './terraform.js'

let gen: Generator
let kit: Kit

before(async () => {
  gen = await loadGenerator()
  kit = gen.loadKit()
})

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const KEY = 'monitoring-test-metrics-key-0123456789'

/** GET /metrics with the key. */
const scrape = async (base: string, key = KEY): Promise<string> => {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${key}` } })
  assert.equal(res.status, 200, `${base}/metrics`)
  return res.text()
}

/** Scrapes of the relay on `port` into a sample store, as Prometheus would (job `relay`); each returns its time. */
const relayScrapes = (port: number): { store: SampleStore; scrapeRelay: () => Promise<number> } => {
  const store = new SampleStore()
  const target = { job: 'relay', instance: `127.0.0.1:${port}` }
  const scrapeRelay = async () => {
    const t = Date.now()
    store.addScrape(await scrape(`http://127.0.0.1:${port}`), t, target)
    return t
  }
  return { store, scrapeRelay }
}

/** The value of the one-sample instant vector `expr` at `t`, or undefined when the vector is empty (the alert does not fire). */
const instant = (expr: string, store: SampleStore, t: number): number | undefined => {
  const v = evaluate(parsePromql(expr), store, t)
  if (v.kind !== 'vector') throw new Error(`${expr} is not a vector`)
  assert.ok(v.samples.length <= 1, `${expr}: one series at most, got ${JSON.stringify(v.samples)}`)
  return v.samples[0]?.value
}

/** GitHub's anchor of a Markdown heading. */
const slug = (heading: string) => heading.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')

describe('infra/monitoring: one source for Prometheus, Grafana and Cloud Monitoring', () => {
  it('the generated rules and dashboards are current (node infra/monitoring/generate.mjs)', () => {
    const files = gen.generatedFiles(kit)
    for (const [path, content] of Object.entries(files)) assert.equal(read(path), content, `${path} is out of date: run node infra/monitoring/generate.mjs`)
    const onDisk = readdirSync(join(ROOT, gen.DASHBOARD_DIR)).map(f => `${gen.DASHBOARD_DIR}/${f}`)
    assert.deepEqual(onDisk.sort(), Object.keys(files).filter(p => p.startsWith(gen.DASHBOARD_DIR)).sort(), 'no stale dashboard file')
  })

  it('Prometheus evaluates the same expressions: every local alert and burn-rate alert, thresholds filled in', () => {
    const rules = (parseYaml(read(gen.RULES_FILE)) as { groups: { rules: { alert: string; expr: string; for?: string; annotations: Record<string, string> }[] }[] }).groups.flatMap(
      g => g.rules,
    )
    const byName = new Map(rules.map(r => [r.alert, r]))
    for (const a of kit.alerts.filter(a => !a.cloud_only)) assert.equal(byName.get(a.name)?.expr, gen.alertExpr(a), a.name)
    for (const slo of kit.slos.slos) for (const rate of kit.slos.burn_rates) assert.equal(byName.get(gen.burnAlertName(slo, rate))?.expr, gen.burnExpr(kit, slo, rate))
    assert.equal(rules.length, kit.alerts.filter(a => !a.cloud_only).length + kit.slos.slos.length * kit.slos.burn_rates.length)
    for (const r of rules) assert.match(r.alert, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'alert names are metric-name shaped')
  })

  it('Grafana shows the dashboards of dashboards.yaml, query for query, and the SLOs', () => {
    for (const d of kit.dashboards) {
      const doc = JSON.parse(read(`${gen.DASHBOARD_DIR}/${d.name}.json`)) as { uid: string; panels: { title: string; targets: { expr: string }[]; datasource: { uid: string } }[] }
      const local = d.panels.filter(p => !p.cloud_only)
      assert.deepEqual(doc.panels.map(p => p.title), local.map(p => p.title))
      assert.deepEqual(doc.panels.map(p => p.targets.map(t => t.expr)), local.map(p => p.queries.map(q => q.expr)))
      for (const p of doc.panels) assert.equal(p.datasource.uid, 'prometheus', 'the provisioned data source')
    }
    const slo = JSON.parse(read(`${gen.DASHBOARD_DIR}/slo.json`)) as { panels: { targets: { expr: string }[] }[] }
    assert.deepEqual(slo.panels.map(p => p.targets[0]?.expr), kit.slos.slos.map(s => gen.errorRatio(s, '1h')))
    const datasource = parseYaml(read('infra/local/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string }[] }
    assert.equal(datasource.datasources[0]?.uid, 'prometheus')
  })

  it('every expression parses with the Prometheus grammar, and the dashboards cover the hint bus', () => {
    const all = kitExpressions(gen, kit)
    assert.ok(all.length > 60, `${all.length} expressions`)
    for (const k of all) assert.doesNotThrow(() => parsePromql(k.expr), k.where)
    const hintBus = kit.dashboards.find(d => d.name === 'hint-bus')
    const used = new Set(hintBus?.panels.flatMap(p => p.queries.flatMap(q => selectors(parsePromql(q.expr)).map(s => s.name))))
    for (const metric of ['msr_relay_hint_outbox_depth', 'msr_relay_hint_publish_lag_seconds_bucket', 'msr_mailbox_push_auth_failures_total'])
      assert.ok(used.has(metric), `the hint bus dashboard shows ${metric}`)
    assert.ok([...used].some(m => m.startsWith('pubsub_googleapis_com:')), 'and the dead-lettered hints (Google Cloud)')
    for (const d of ['relay', 'mailbox', 'hint-bus']) assert.ok(kit.dashboards.some(x => x.name === d), `a ${d} dashboard`)
  })

  it("each SLO's Cloud Monitoring selectors are the ones its error ratio uses", () => {
    const key = (name: string, matchers: { label: string; op: string; value: string }[]) =>
      `${name}{${matchers.map(m => `${m.label}${m.op}${m.value}`).sort().join(',')}}`
    for (const slo of kit.slos.slos) {
      const used = new Set(selectors(parsePromql(gen.errorRatio(slo, '1h'))).map(s => key(s.name, s.matchers)))
      const { ratio, latency } = slo.cloud
      const expected = ratio
        ? [key(ratio.bad.metric, ratio.bad.matchers), key(ratio.total.metric, ratio.total.matchers)]
        : latency
          ? [key(`${latency.metric}_bucket`, [...latency.matchers, { label: 'le', op: '=', value: String(latency.le) }]), key(`${latency.metric}_count`, latency.matchers)]
          : assert.fail(`${slo.name}: a ratio or a latency SLI`)
      assert.deepEqual([...used].sort(), expected.sort(), slo.name)
      assert.ok(slo.target > 0.9 && slo.target < 1, `${slo.name}: a target with a budget`)
    }
    const names = kit.slos.slos.map(s => s.name)
    for (const n of ['relay-event-availability', 'relay-req-availability', 'relay-event-latency', 'relay-req-latency', 'hint-delivery', 'mailbox-availability', 'mailbox-latency'])
      assert.ok(names.includes(n), `SLO ${n}`)
  })

  it("every alert links to a section of the runbook, and every incident of the runbook has an alert", () => {
    const headings = [...read('docs/runbook.md').matchAll(/^### (5\.\d+ .*)$/gm)].map(m => slug(m[1] as string))
    assert.ok(headings.length >= 9)
    for (const a of kit.alerts) assert.ok(headings.includes(a.runbook), `${a.name}: runbook anchor ${a.runbook} is a §5 heading (${headings.join(', ')})`)
    for (const h of headings) assert.ok(kit.alerts.some(a => a.runbook === h), `runbook §${h} has an alert`)
  })

  it('docs/slo.md lists every SLO with its target, and every alert with its default threshold', () => {
    const doc = read('docs/slo.md')
    for (const slo of kit.slos.slos) {
      const row = doc.split('\n').find(l => l.startsWith(`| \`${slo.name}\``))
      assert.ok(row, `docs/slo.md has a row for ${slo.name}`)
      assert.ok(row.includes(`${+(slo.target * 100).toFixed(3)} %`), `${slo.name}: target ${slo.target * 100} % in ${row}`)
    }
    for (const a of kit.alerts) {
      const row = doc.split('\n').find(l => l.startsWith(`| \`${a.name}\``))
      assert.ok(row, `docs/slo.md has a row for ${a.name}`)
      assert.ok(row.includes(`| ${a.threshold} |`), `${a.name}: default ${a.threshold} in ${row}`)
    }
  })

  it('README says what each panel means (its rows are the panels of dashboards.yaml)', () => {
    const readme = read('README.md')
    const section = readme.slice(readme.indexOf('## Dashboards and alerts'), readme.indexOf('## Deploying on Google Cloud'))
    for (const d of kit.dashboards) for (const p of d.panels) assert.ok(section.includes(`| ${p.title} | ${p.description} |`), `README row for ${d.name} / ${p.title}`)
    assert.match(section, /http:\/\/127\.0\.0\.1:3000/)
    assert.match(section, /infra\/local\/prometheus\/npm-start\.yml/)
  })

  it('the check finds a renamed metric, an unknown label, a missing bucket and a bad legend', () => {
    const exported: Exported = new Map([
      ['msr_x_total', { type: 'counter', labels: new Set(['kind']), le: new Set<string>() }],
      ['msr_x_seconds', { type: 'histogram', labels: new Set(['kind']), le: new Set(['0.1', '+Inf']) }],
    ])
    const check = (expr: string, legendLabels: string[] = []) => checkExpression({ where: 't', expr, cloudOnly: false, legendLabels }, exported)
    assert.deepEqual(check('sum by (kind) (rate(msr_x_total{kind="1",job="relay"}[5m]))', ['kind']), [])
    assert.deepEqual(check('histogram_quantile(0.9, sum by (le) (rate(msr_x_seconds_bucket{le="0.1"}[5m])))'), [])
    assert.match(check('rate(msr_y_total[5m])').join(), /msr_y_total is not exported/)
    assert.match(check('rate(msr_x_total{outcome="a"}[5m])').join(), /no label outcome/)
    assert.match(check('sum by (outcome) (rate(msr_x_total[5m]))').join(), /no label outcome/)
    assert.match(check('rate(msr_x_seconds_bucket{le="0.25"}[5m])').join(), /no bucket le="0.25"/)
    assert.match(check('rate(msr_x_seconds[5m])').join(), /is a histogram/)
    assert.match(check('sum(rate(msr_x_total[5m]))', ['kind']).join(), /legend names \{\{kind\}\}/)
    assert.match(check('max(msr_x_total{job="relays"})').join(), /no job "relays"/)
    assert.match(check('max(pubsub_googleapis_com:subscription_num_undelivered_messages)').join(), /not marked cloud_only/)
    assert.match(check('sum(rate(msr_x_total[5m]) >').join(), /syntax error/)
  })
})

describe('the kit against the running services (npm start, both /metrics scraped)', () => {
  let dir: string
  let platform: Service
  let relayUrl: string
  let mailboxUrl: string

  before(async () => {
    dir = await tempDir()
    const [relay, mailbox, pg] = [await freePort(), await freePort(), await freePort()]
    relayUrl = `ws://127.0.0.1:${relay}`
    mailboxUrl = `http://127.0.0.1:${mailbox}`
    platform = spawnService(START, [], {
      RELAY_PORT: String(relay),
      MAILBOX_PORT: String(mailbox),
      RELAY_DATA__PATH: join(dir, 'relay'),
      MAILBOX_DATA_DIR: join(dir, 'postgres'),
      MAILBOX_EMBEDDED_PG_PORT: String(pg),
      RELAY_METRICS__AUTH: KEY,
      METRICS_AUTH: KEY,
    })
    await waitReady(platform, `${mailboxUrl}/readyz`, 'the mailbox API')
    await waitReady(platform, `${relayUrl.replace('ws:', 'http:')}/readyz`, 'the relay')
  })

  after(async () => {
    await platform?.stop()
    await removeDir(dir)
  })

  it('every dashboard panel, alert and SLO names only metrics, labels, buckets and jobs the services export', async () => {
    // Traffic, so that labelled series exist: a 445 (a hint to the mailbox), REQ, COUNT, a refused AUTH, API requests.
    const client = await RelayClient.connect(relayUrl)
    try {
      await client.auth(newSigner(), relayUrl)
      const message = sign(newSigner(), 445, [['h', `g-${Date.now()}`]], 'ciphertext')
      assert.equal((await client.publish(message))[2], true)
      await client.query({ kinds: [445], limit: 5 })
      client.send(['COUNT', 'c1', { kinds: [445] }])
      await client.next(m => m[0] === 'COUNT', 'the COUNT answer')
      const bad = sign(newSigner(), 22242, [['relay', 'wss://elsewhere'], ['challenge', 'x']])
      client.send(['AUTH', bad])
      await client.next(m => m[0] === 'OK' && m[1] === bad.id, 'the refused AUTH')
    } finally {
      client.close()
    }
    assert.equal((await fetch(`${mailboxUrl}/api/v1/keypackages?recipient=${'a'.repeat(64)}`)).status, 401)
    const relayText = await scrape(relayUrl.replace('ws:', 'http:'))
    const mailboxText = await eventually(async () => {
      const text = await scrape(mailboxUrl)
      return /^msr_mailbox_hint_delivery_seconds_count\{kind="445"\} 1$/m.test(text) ? text : undefined
    }, 'the hint applied on the mailbox')
    // Names, types and bucket boundaries as scraped; label names as scraped, plus the ones each service
    // declares for series that this traffic did not create (an internal error, a rate limit...).
    const exported: Exported = new Map([...inventory(relayText), ...inventory(mailboxText)])
    for (const [file, factory] of [
      ['services/relay/dist/src/metrics.js', 'createRelayMetrics'],
      ['services/mailbox-api/dist/src/metrics.js', 'createMailboxMetrics'],
    ] as const) {
      const module = (await import(pathToFileURL(join(ROOT, file)).href)) as Record<string, () => { metrics: { registry: { getMetricsAsArray(): { name: string; labelNames?: string[] }[] } } }>
      for (const m of (module[factory] as () => { metrics: { registry: { getMetricsAsArray(): { name: string; labelNames?: string[] }[] } } })().metrics.registry.getMetricsAsArray()) {
        const scraped = exported.get(m.name)
        assert.ok(scraped, `${m.name} is declared and scraped`)
        for (const l of m.labelNames ?? []) scraped.labels.add(l)
      }
    }
    assert.ok(exported.get('msr_relay_events_total')?.labels.has('outcome'), 'labels seen in the scrape')
    const problems = kitExpressions(gen, kit).flatMap(k => checkExpression(k, exported))
    assert.deepEqual(problems, [])
  })
})

describe('an incident driven locally: the mailbox API down while 445s arrive', () => {
  it("the outbox alert's expression crosses its threshold over scraped samples, and clears once the mailbox is back", async () => {
    const outbox = kit.alerts.find(a => a.name === 'HintOutboxGrowing')
    const failing = kit.alerts.find(a => a.name === 'HintPublishFailing')
    assert.ok(outbox && failing)
    const dir = await tempDir()
    const [relayPort, mailboxPort, pg] = [await freePort(), await freePort(), await freePort()]
    const token = 'monitoring-test-push-token-0123456789'
    const relayHttp = `http://127.0.0.1:${relayPort}`
    const relayUrl = `ws://127.0.0.1:${relayPort}`
    const relay = spawnService(RELAY_CLI, ['serve'], {
      PORT: String(relayPort),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_AUTH__ENABLED: 'true',
      RELAY_NETWORK__PUBLIC_URL: relayUrl,
      RELAY_METRICS__ENABLED: 'true',
      RELAY_METRICS__AUTH: KEY,
      RELAY_HINTS__TRANSPORT: 'local',
      RELAY_HINTS__PUSH_URL: `http://127.0.0.1:${mailboxPort}/internal/pubsub/push`,
      RELAY_HINTS__PUSH_TOKEN: token,
      RELAY_HINTS__MAX_BACKOFF: '"1s"',
    })
    let mailbox: Service | undefined
    const { store, scrapeRelay } = relayScrapes(relayPort)
    try {
      await waitReady(relay, `${relayHttp}/readyz`, 'the relay')
      let t = await scrapeRelay()
      assert.equal(instant(gen.alertExpr(outbox), store, t), undefined, 'quiet before the incident')
      const client = await RelayClient.connect(relayUrl)
      await client.auth(newSigner(), relayUrl)
      const group = `incident-${Date.now()}`
      const count = outbox.threshold + 20
      const messages = Array.from({ length: count }, (_, i) => sign(newSigner(), 445, [['h', group], ['k', String(i + 1)]]))
      await Promise.all(messages.map(m => client.publish(m)))
      client.close()
      // Scrapes every second for a few seconds, as Prometheus would every 15 s.
      for (let i = 0; i < 5; i++) {
        await sleep(1000)
        t = await scrapeRelay()
      }
      const depth = instant(gen.alertExpr(outbox), store, t)
      assert.ok(depth !== undefined && depth > outbox.threshold, `${outbox.name} fires: ${gen.alertExpr(outbox)} = ${depth}`)
      assert.equal(depth, count, 'every hint waits in the outbox')
      const failures = instant(gen.alertExpr(failing), store, t)
      assert.ok(failures !== undefined && failures > failing.threshold, `${failing.name} fires: ${gen.alertExpr(failing)} = ${failures}`)
      // The mailbox API comes back: the outbox drains, the alert's expression no longer holds.
      mailbox = spawnService(MAILBOX_CLI, ['serve'], {
        PORT: String(mailboxPort),
        MAILBOX_DATA_DIR: join(dir, 'postgres'),
        MAILBOX_EMBEDDED_PG_PORT: String(pg),
        HINTS_PUSH_TOKEN: token,
        METRICS_AUTH: KEY,
      })
      await waitReady(mailbox, `http://127.0.0.1:${mailboxPort}/readyz`, 'the mailbox API')
      await eventually(async () => {
        const now = await scrapeRelay()
        return instant(gen.alertExpr(outbox), store, now) === undefined ? true : undefined
      }, `${outbox.name} to clear`)
      // The delay the hint delivery SLO measures: every hint waited for the mailbox (seconds, not milliseconds).
      const text = await eventually(async () => {
        const scraped = await scrape(`http://127.0.0.1:${mailboxPort}`)
        return new RegExp(`^msr_mailbox_hint_delivery_seconds_count\\{kind="445"\\} ${count}$`, 'm').test(scraped) ? scraped : undefined
      }, 'every hint applied')
      const under1s = /^msr_mailbox_hint_delivery_seconds_bucket\{le="1",kind="445"\} (\d+)$/m.exec(text)?.[1]
      assert.ok(Number(under1s) < count, 'the delays of the outage are observed')
    } finally {
      await relay.stop()
      await mailbox?.stop()
      await removeDir(dir)
    }
  })
})

describe('an incident driven locally: the relay store filling up to its cap', () => {
  it("the store alert's expression crosses its threshold as the store nears [data] max_size, and the panel shows the cap", async () => {
    const alert = kit.alerts.find(a => a.name === 'RelayStoreNearlyFull')
    assert.ok(alert)
    const dir = await tempDir()
    const port = await freePort()
    const http = `http://127.0.0.1:${port}`
    const url = `ws://127.0.0.1:${port}`
    const cap = 512 * 1024
    const relay = spawnService(RELAY_CLI, ['serve'], {
      PORT: String(port),
      RELAY_DATA__PATH: join(dir, 'relay'),
      RELAY_DATA__MAX_SIZE: String(cap),
      RELAY_AUTH__ENABLED: 'true',
      RELAY_NETWORK__PUBLIC_URL: url,
      RELAY_METRICS__ENABLED: 'true',
      RELAY_METRICS__AUTH: KEY,
    })
    const { store, scrapeRelay } = relayScrapes(port)
    const capPanel = kit.dashboards.flatMap(d => d.panels).find(p => p.title === 'Store size and cap')
    assert.ok(capPanel)
    try {
      await waitReady(relay, `${http}/readyz`, 'the relay')
      let t = await scrapeRelay()
      assert.equal(instant(gen.alertExpr(alert), store, t), undefined, 'quiet on an empty store')
      const client = await RelayClient.connect(url)
      await client.auth(newSigner(), url)
      const author = newSigner()
      // 2 kB notes, one at a time, until the relay refuses one: the store is at its cap.
      let refused: unknown[] | undefined
      const shares: number[] = []
      for (let i = 0; i < 2000 && !refused; i++) {
        const answer = await client.publish(sign(author, 1, [], `note ${i} ${'x'.repeat(2000)}`))
        if (answer[2] === false) refused = answer
        else if (i % 25 === 0) {
          // The share of the cap used (the expression over a threshold of -1), and whether the alert fires.
          t = await scrapeRelay()
          const share = instant(gen.alertExpr(alert, -1), store, t)
          assert.ok(share !== undefined && share >= 0 && share < 1.5, `a share of the cap: ${share}`)
          shares.push(share)
          assert.equal(instant(gen.alertExpr(alert), store, t) !== undefined, share > alert.threshold, `fires only over ${alert.threshold}: ${share}`)
        }
      }
      assert.ok(shares.some(v => v < alert.threshold), `quiet while the store was under the threshold: ${shares.join(', ')}`)
      client.close()
      assert.ok(refused, '2000 notes of 2 kB stored under a cap of 512 KiB')
      assert.match(String(refused[3]), /^error: the relay's storage is full/)
      t = await scrapeRelay()
      const share = instant(gen.alertExpr(alert), store, t)
      assert.ok(share !== undefined && share >= 1, `${alert.name} fires at the cap: ${gen.alertExpr(alert)} = ${share}`)
      assert.equal(instant(gen.alertExpr(alert, 100), store, t), undefined, 'and only over its threshold')
      const [used, shown] = capPanel.queries.map(q => instant(q.expr, store, t))
      assert.equal(shown, cap, 'the panel shows the cap in force')
      assert.ok(used !== undefined && used >= cap, `and the store at it: ${used}`)
    } finally {
      await relay.stop()
      await removeDir(dir)
    }
  })

  it('stays quiet without a cap (msr_relay_store_max_bytes 0)', () => {
    const alert = kit.alerts.find(a => a.name === 'RelayStoreNearlyFull')
    assert.ok(alert)
    const store = new SampleStore()
    const target = { job: 'relay', instance: '127.0.0.1:1' }
    store.addScrape('msr_relay_store_used_bytes 1048576\nmsr_relay_store_max_bytes 0\n', 1000, target)
    assert.equal(instant(gen.alertExpr(alert), store, 1000), undefined)
    store.addScrape('msr_relay_store_used_bytes 1048576\nmsr_relay_store_max_bytes 1200000\n', 2000, target)
    assert.ok((instant(gen.alertExpr(alert), store, 2000) ?? 0) > alert.threshold, 'and fires once a cap is set')
  })
})

describe('the kit on Google Cloud (infra/terraform/monitoring.tf) and in docker-compose', () => {
  let tf: Terraform
  before(async () => {
    tf = await loadTerraform()
  })

  const source = (name: string) => String(tf.locals[name])

  it('reads the same files, one alert policy per alert and per SLO burn rate, one dashboard each', () => {
    assert.match(source('kit_alerts'), /file\("\$\{path\.module\}\/\.\.\/monitoring\/alerts\.yaml"\)/)
    assert.match(source('kit_dashboards'), /monitoring\/dashboards\.yaml/)
    assert.match(source('kit_slos'), /monitoring\/slos\.yaml/)
    const incident = resource(tf, 'google_monitoring_alert_policy', 'incident')
    const condition = child(child(incident, 'conditions'), 'condition_prometheus_query_language')
    assert.equal(condition.query, '${replace(each.value.expr, "$threshold", tostring(local.alert_threshold[each.key]))}', 'the alert expression, threshold filled in as generate.mjs does')
    assert.match(String(source('alert_threshold')), /lookup\(var\.alert_thresholds, a\.name, lookup\(local\.derived_threshold, a\.name, a\.threshold\)\)/, 'thresholds default to alerts.yaml')
    // …but for the one that follows the events topic's retention (relay replicas, replication.tf).
    assert.deepEqual(tf.locals.derived_threshold, { SnapshotOlderThanRetention: '${floor((local.relay_events_retention_sec - local.relay_seek_margin_minutes * 60) / 2)}' })
    const derivedDefault = Math.floor((168 * 3600 - 10 * 60) / 2)
    assert.equal(kit.alerts.find(a => a.name === 'SnapshotOlderThanRetention')?.threshold, derivedDefault, 'alerts.yaml holds what Terraform derives from the defaults')
    assert.match(String(child(incident, 'documentation').content), /Runbook: \$\{local\.runbook_link\[each\.key\]\}/)
    assert.deepEqual(incident.notification_channels, '${local.notification_channels}')
    const burn = resource(tf, 'google_monitoring_alert_policy', 'slo_burn')
    assert.equal(burn.for_each, '${local.slo_burn_alerts}')
    for (const placeholder of ['$error_ratio_long', '$error_ratio_short', '$factor', '$target', '$window']) assert.ok(source('slo_burn_alerts').includes(placeholder), placeholder)
    const dashboards = resource(tf, 'google_monitoring_dashboard', 'kit')
    assert.match(String(dashboards.dashboard_json), /prometheusQuery = q\.expr/)
    const slo = resource(tf, 'google_monitoring_slo', 'kit')
    assert.match(String(slo.goal), /local\.slo_target\[each\.key\]/)
    for (const v of ['notification_channels', 'alert_emails', 'alert_thresholds', 'slo_targets', 'runbook_url', 'gmp_sidecar_image'])
      assert.ok(String(tf.variable[v]?.description ?? '').length > 40, `variable ${v} documented`)
    assert.deepEqual(tf.variable.alert_thresholds?.default, {})
  })

  it('runs the Managed Service for Prometheus sidecar beside each service, scraping /metrics with its key, job named as locally', () => {
    for (const [service, secret, port, job] of [
      ['relay', 'relay_gmp_config', '8080', 'relay'],
      ['mailbox_api', 'mailbox_gmp_config', '8081', 'mailbox'],
    ] as const) {
      const run = resource(tf, 'google_cloud_run_v2_service', service)
      const containers = children(child(run, 'template'), 'containers')
      assert.equal(containers[0], appContainer(run), 'the app is containers[0] (lifecycle and deploys name it)')
      const sidecar = containers.find(c => c.name === 'metrics') as Block
      assert.equal(sidecar.image, '${var.gmp_sidecar_image}')
      // The relay's starts with it: waiting for its startup probe (/readyz) would hide a replica catching up.
      assert.deepEqual(sidecar.depends_on, service === 'relay' ? undefined : [appContainer(run).name])
      assert.equal(child(sidecar, 'volume_mounts').mount_path, '/etc/rungmp')
      const volume = children(child(run, 'template'), 'volumes').find(v => v.name === 'gmp-config') as Block
      assert.equal(child(volume, 'secret').secret, `\${google_secret_manager_secret.all["${secret}"].secret_id}`)
      assert.equal(child(child(volume, 'secret'), 'items').path, 'config.yaml')
      assert.equal(String(child(appContainer(run), 'ports').container_port), port)
      const short = service === 'relay' ? 'relay' : 'mailbox'
      assert.deepEqual((tf.locals.gmp_config as Record<string, unknown>)[short], { name: job, port })
    }
    const config = String(resource(tf, 'google_secret_manager_secret_version', 'gmp_config').secret_data)
    assert.match(config, /kind += "RunMonitoring"/)
    assert.match(config, /params += \{ auth = \[random_password\.secret\["\$\{each\.key\}_metrics_key"\]\.result\] \}/, 'the key as ?auth= (the sidecar sends no headers)')
    assert.deepEqual(Object.keys(tf.locals.gmp_config as object).sort(), ['mailbox', 'relay'], 'relay_metrics_key and mailbox_metrics_key')
    const writers = resource(tf, 'google_project_iam_member', 'metric_writers')
    assert.equal(writers.role, 'roles/monitoring.metricWriter')
  })

  it("docker-compose's Prometheus scrapes both services with their keys, and Grafana gets the generated dashboards", () => {
    const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[]; command?: string[] }> }
    const env = (service: string) => compose.services[service]?.environment ?? {}
    assert.equal(env('prometheus').RELAY_METRICS_KEY, env('relay').RELAY_METRICS__AUTH, "the relay's key, same default")
    assert.equal(env('prometheus').MAILBOX_METRICS_KEY, env('mailbox-api').METRICS_AUTH, "the mailbox's key, same default")
    assert.match(String(compose.services.prometheus?.command), /\/tmp\/keys\/relay.*\/tmp\/keys\/mailbox/)
    const prom = parseYaml(read('infra/local/prometheus/prometheus.yml')) as { rule_files: string[]; scrape_configs: { job_name: string; authorization: { credentials_file: string }; static_configs: { targets: string[] }[] }[] }
    assert.deepEqual(prom.scrape_configs.map(s => s.job_name), JOBS, 'the job names the kit selects')
    assert.deepEqual(prom.scrape_configs.map(s => s.authorization.credentials_file), ['/tmp/keys/relay', '/tmp/keys/mailbox'])
    assert.deepEqual(prom.scrape_configs.map(s => s.static_configs[0]?.targets[0]), [`relay:${env('relay').PORT}`, `mailbox-api:${env('mailbox-api').PORT}`])
    const npmStart = parseYaml(read('infra/local/prometheus/npm-start.yml')) as typeof prom
    assert.deepEqual(npmStart.scrape_configs.map(s => s.job_name), JOBS)
    assert.ok(compose.services.prometheus?.volumes?.includes('./infra/local/prometheus/rules.yml:/etc/prometheus/rules.yml:ro'))
    assert.ok(compose.services.grafana?.volumes?.includes('./infra/local/grafana/dashboards:/var/lib/grafana/dashboards:ro'))
    assert.equal(env('grafana').MSR_DASHBOARDS, '/var/lib/grafana/dashboards')
  })
})
