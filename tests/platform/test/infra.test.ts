// The platform as code, checked offline (no Google Cloud account exists here): the Terraform parsed with
// HashiCorp's HCL parser, and cloudbuild.yaml. Every route of the load balancer reaches the right Cloud Run
// service, Cloud Armor guards both backends, ingress and scaling are as the design says, every IAM grant is
// one of an allowed list, and no secret value is written in any file. Relay replicas are opt-in: the default
// makes nothing of them; with them, the events topic, its grants and the relay's [replication] settings
// hold (and infra/gke's StatefulSet passes the relay's own configuration schema).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { ROOT } from './platform.js'
import { appContainer, child, children, containerEnv, dynamicEnv, loadTerraform, refersTo, resource, TERRAFORM_DIR, type Block, type Terraform } from './terraform.js'

let tf: Terraform

/** A Cloud Run env value read from Secret Manager: `google_secret_manager_secret.all["<key>"].secret_id`. */
const SECRET_REF = /^\$\{google_secret_manager_secret\.all\["([a-z_]+)"\]\.secret_id\}$/

before(async () => {
  tf = await loadTerraform()
})

/** The Cloud Run service a backend service reaches: backend → serverless NEG → service. */
const serviceBehind = (backendRef: unknown): string => {
  const backend = refersTo(backendRef) ?? ''
  assert.ok(backend.startsWith('google_compute_backend_service.'), `a backend service: ${String(backendRef)}`)
  const [, backendName] = backend.split('.') as [string, string]
  const neg = refersTo(child(resource(tf, 'google_compute_backend_service', backendName), 'backend').group) ?? ''
  assert.ok(neg.startsWith('google_compute_region_network_endpoint_group.'), `a NEG behind ${backend}`)
  const negBlock = resource(tf, 'google_compute_region_network_endpoint_group', neg.split('.')[1] as string)
  assert.equal(negBlock.network_endpoint_type, 'SERVERLESS')
  const service = refersTo(child(negBlock, 'cloud_run').service) ?? ''
  assert.ok(service.startsWith('google_cloud_run_v2_service.'), `a Cloud Run service behind ${neg}`)
  return String(resource(tf, 'google_cloud_run_v2_service', service.split('.')[1] as string).name)
}

describe('layout', () => {
  it('is split by concern, every variable documented, the outputs an operator needs', () => {
    for (const file of ['gateway.tf', 'armor.tf', 'services.tf', 'bus.tf', 'data.tf', 'secrets.tf', 'iam.tf', 'variables.tf', 'outputs.tf', 'versions.tf'])
      assert.ok(tf.files.includes(file), file)
    for (const [name, variable] of Object.entries(tf.variable)) assert.ok(String(variable.description ?? '').length > 20, `variable ${name} is documented`)
    for (const name of ['gateway_ip', 'relay_url', 'api_url', 'relay_service_url', 'mailbox_service_url', 'hint_topics', 'dead_letter_subscription'])
      assert.ok(tf.output[name]?.description, `output ${name}`)
  })

  it('passes terraform fmt -check where the CLI exists', t => {
    let version: string
    try {
      version = execFileSync('terraform', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    } catch {
      return t.skip('no terraform CLI on this machine')
    }
    assert.match(version, /Terraform v/)
    execFileSync('terraform', ['fmt', '-check', '-recursive', TERRAFORM_DIR], { stdio: ['ignore', 'pipe', 'pipe'] })
  })
})

describe('the gateway', () => {
  it('sends /api/v1 and /api/v1/* (and the API probes) to the mailbox API, everything else to the relay, on the one domain', () => {
    const map = resource(tf, 'google_compute_url_map', 'gateway')
    assert.equal(serviceBehind(map.default_service), 'msr-relay')
    const hostRule = child(map, 'host_rule')
    assert.deepEqual(hostRule.hosts, ['${var.domain}'])
    const matcher = children(map, 'path_matcher').find(m => m.name === hostRule.path_matcher)
    assert.ok(matcher)
    assert.equal(serviceBehind(matcher.default_service), 'msr-relay', 'WebSocket upgrades and NIP-11 go to the relay')
    const routes = new Map(children(matcher, 'path_rule').flatMap(rule => (rule.paths as string[]).map(path => [path, rule] as const)))
    assert.deepEqual([...routes.keys()].sort(), ['/api/healthz', '/api/readyz', '/api/v1', '/api/v1/*'])
    for (const rule of routes.values()) assert.equal(serviceBehind(rule.service), 'msr-mailbox-api')
    const rewrite = (path: string) => child(child(routes.get(path), 'route_action'), 'url_rewrite').path_prefix_rewrite
    assert.equal(rewrite('/api/healthz'), '/healthz')
    assert.equal(rewrite('/api/readyz'), '/readyz')
    assert.equal(routes.get('/api/v1')?.route_action, undefined, 'API paths reach the service as the client sent them (NIP-98 signs them)')
  })

  it('terminates TLS with a managed certificate for the domain and redirects plain HTTP', () => {
    const cert = resource(tf, 'google_compute_managed_ssl_certificate', 'gateway')
    assert.deepEqual(child(cert, 'managed').domains, ['${var.domain}'])
    const https = resource(tf, 'google_compute_global_forwarding_rule', 'https')
    assert.equal(https.port_range, '443')
    assert.equal(https.load_balancing_scheme, 'EXTERNAL_MANAGED')
    const proxy = resource(tf, 'google_compute_target_https_proxy', 'gateway')
    assert.equal(refersTo(https.target), 'google_compute_target_https_proxy.gateway')
    assert.equal(refersTo(proxy.url_map), 'google_compute_url_map.gateway')
    assert.deepEqual((proxy.ssl_certificates as string[]).map(refersTo), ['google_compute_managed_ssl_certificate.gateway'])
    const http = resource(tf, 'google_compute_global_forwarding_rule', 'http')
    assert.equal(http.port_range, '80')
    assert.equal(https.ip_address, http.ip_address, 'one address')
    const redirectProxy = refersTo(http.target)?.split('.')[1] as string
    const redirectMap = refersTo(resource(tf, 'google_compute_target_http_proxy', redirectProxy).url_map)?.split('.')[1] as string
    const redirect = child(resource(tf, 'google_compute_url_map', redirectMap), 'default_url_redirect')
    assert.equal(redirect.https_redirect, true)
    assert.equal(resource(tf, 'google_compute_url_map', redirectMap).default_service, undefined, 'plain HTTP reaches no service')
  })

  it('puts Cloud Armor on both backends, logging every request with its decision', () => {
    for (const [backend, policy] of [['relay', 'relay'], ['mailbox_api', 'api']] as const) {
      const service = resource(tf, 'google_compute_backend_service', backend)
      assert.equal(service.security_policy, `\${google_compute_security_policy.armor["${policy}"].id}`, backend)
      assert.ok((tf.locals.armor_policies as Record<string, unknown>)[policy], `policy ${policy} is defined`)
      assert.equal(service.protocol, 'HTTPS')
      assert.deepEqual(child(service, 'log_config'), { enable: true, sample_rate: 1 })
      assert.equal(service.timeout_sec, undefined, 'serverless NEG backends take no timeout: Cloud Run\'s applies')
    }
  })
})

describe('the local mirror (docker-compose gateway, infra/local/gateway.conf)', () => {
  const conf = () => readFileSync(join(ROOT, 'infra/local/gateway.conf'), 'utf8').replace(/#.*$/gm, '')
  const locations = () => new Map([...conf().matchAll(/^\s*location\s+([^{]+?)\s*{([^{}]*)}/gm)].map(m => [m[1] as string, m[2] as string]))
  const value = (body: string | undefined, name: string) => new RegExp(`${name}\\s+([^;]+);`).exec(body ?? '')?.[1]
  const upstream = { 'msr-relay': 'http://relay:8080', 'msr-mailbox-api': 'http://mailbox-api:8081' } as Record<string, string>

  it('routes every path of the URL map to the same service, rewritten the same way', () => {
    const map = resource(tf, 'google_compute_url_map', 'gateway')
    const matcher = child(map, 'path_matcher')
    const expected = new Map<string, string>([['/', upstream[serviceBehind(matcher.default_service)] as string]])
    for (const rule of children(matcher, 'path_rule')) {
      const target = upstream[serviceBehind(rule.service)] as string
      const rewrite = rule.route_action ? String(child(child(rule, 'route_action'), 'url_rewrite').path_prefix_rewrite) : ''
      for (const path of rule.paths as string[]) expected.set(path.endsWith('/*') ? path.slice(0, -1) : `= ${path}`, `${target}${rewrite}`)
    }
    const actual = new Map([...locations()].map(([head, body]) => [head, value(body, 'proxy_pass')]))
    assert.deepEqual(Object.fromEntries(actual), Object.fromEntries(expected))
  })

  it('keeps requests open as long as each Cloud Run service does', () => {
    const timeout = (name: string) => String(child(resource(tf, 'google_cloud_run_v2_service', name), 'template').timeout)
    assert.equal(value(locations().get('/'), 'proxy_read_timeout'), timeout('relay'))
    for (const head of ['= /api/v1', '/api/v1/']) assert.equal(value(locations().get(head), 'proxy_read_timeout'), timeout('mailbox_api'), head)
  })
})

describe('Cloud Armor', () => {
  const rules = (policy: Block): Block[] => [
    ...children(policy, 'rule'),
    // hcl2json gives `dynamic` as one object of block lists (not a list of blocks).
    ...children((policy.dynamic ?? {}) as Block, 'rule').map(r => ({ ...child(r, 'content'), for_each: r.for_each })),
  ]

  it('on both: the IP allowlist only when the variable lists ranges, a rate-based ban per IP, verbose logs, allow by default', () => {
    const armor = resource(tf, 'google_compute_security_policy', 'armor')
    assert.equal(armor.for_each, '${local.armor_policies}', 'one policy per backend, from one definition')
    assert.deepEqual(Object.keys(tf.locals.armor_policies as object).sort(), ['api', 'relay'])
    assert.equal(child(armor, 'advanced_options_config').log_level, 'VERBOSE')
    const all = rules(armor)
    const allowlist = all.find(r => r.priority === 100)
    assert.equal(allowlist?.for_each, '${length(var.allowed_ip_ranges) > 0 ? [1] : []}', 'no allowlist rule when the list is empty')
    assert.equal(allowlist?.action, 'deny(403)')
    assert.equal(child(child(allowlist, 'match'), 'expr').expression, '!(${local.allowlist_expression})')
    assert.equal(tf.locals.allowlist_expression, `\${join(" || ", [for range in var.allowed_ip_ranges : "inIpRange(origin.ip, '\${range}')"])}`)
    const ban = all.find(r => r.action === 'rate_based_ban')
    assert.ok(ban, 'rate-based ban')
    const options = child(ban, 'rate_limit_options')
    assert.equal(options.enforce_on_key, 'IP')
    assert.equal(options.exceed_action, 'deny(429)')
    assert.equal(options.ban_duration_sec, '${var.ban_duration_sec}')
    assert.ok((ban.priority as number) > 100, 'the allowlist is checked before the ban lets a request through')
    assert.equal(all.find(r => r.priority === 2147483647)?.action, 'allow')
    const metrics = all.find(r => r.description === 'metrics stay internal')
    assert.equal(metrics?.action, 'deny(404)', 'GET /metrics from outside is a 404 on both backends')
    assert.equal(child(child(metrics, 'match'), 'expr').expression, "request.path.lower().startsWith('/metrics')")
    assert.ok((metrics?.priority as number) < 100, 'before the allowlist lets an allowed address through')
    assert.equal(metrics?.for_each, undefined, 'always present')
  })

  it('WAF rules on the API only, never reading the Authorization header (NIP-98)', () => {
    const waf = rules(resource(tf, 'google_compute_security_policy', 'armor')).filter(r => JSON.stringify(r).includes('evaluatePreconfiguredWaf'))
    assert.equal(waf.length, 1, 'one dynamic rule over the rule sets')
    const rule = waf[0] as Block
    assert.equal(rule.for_each, '${each.value.waf ? local.waf_rule_sets : []}', 'only where the policy asks for WAF')
    const policies = tf.locals.armor_policies as Record<string, Block>
    assert.equal(policies.api?.waf, true)
    assert.equal(policies.relay?.waf, false, 'no WAF rule on the relay (it would only see upgrades)')
    assert.ok((tf.locals.waf_rule_sets as string[]).includes('sqli-v33-stable') && (tf.locals.waf_rule_sets as string[]).includes('xss-v33-stable'))
    assert.match(String(child(child(rule, 'match'), 'expr').expression), /'sensitivity': 1/)
    const exclusion = child(child(rule, 'preconfigured_waf_config'), 'exclusion')
    assert.equal(exclusion.target_rule_set, '${rule.value}')
    assert.deepEqual(child(exclusion, 'request_header'), { operator: 'EQUALS', value: 'authorization' })
  })
})

describe('the services', () => {
  const relay = () => resource(tf, 'google_cloud_run_v2_service', 'relay')
  const mailbox = () => resource(tf, 'google_cloud_run_v2_service', 'mailbox_api')

  it('take traffic from the load balancer only', () => {
    for (const service of [relay(), mailbox()]) {
      assert.equal(service.ingress, 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER', String(service.name))
      assert.deepEqual((child(service, 'lifecycle').ignore_changes as string[])[0], '${template[0].containers[0].image}', 'images are the deploy\'s')
    }
  })

  it('keep the relay at relay_replicas gen2 instances (one by default), CPU always allocated, session affinity, one-hour requests', () => {
    const template = child(relay(), 'template')
    assert.deepEqual(child(template, 'scaling'), { max_instance_count: '${var.relay_replicas}', min_instance_count: '${var.relay_replicas}' })
    assert.equal(tf.variable.relay_replicas?.default, 1, 'one instance unless asked')
    assert.equal(template.execution_environment, 'EXECUTION_ENVIRONMENT_GEN2')
    assert.equal(template.session_affinity, true)
    assert.equal(template.timeout, '3600s')
    assert.equal(child(appContainer(relay()), 'resources').cpu_idle, false)
  })

  it('keep a relay instance out of traffic until /readyz answers (restored, and with replicas caught up), for up to 240 s; liveness on /healthz', () => {
    const container = appContainer(relay())
    const startup = child(container, 'startup_probe')
    assert.equal(child(startup, 'http_get').path, '/readyz', 'a replica catching up must not take traffic')
    const window = Number(startup.period_seconds) * Number(startup.failure_threshold)
    // Cloud Run stops an instance whose startup probe has not passed within failure_threshold × period_seconds,
    // at most 240 s: a bootstrap (restore, seek, backlog) of a few minutes needs the whole of it.
    assert.ok(window >= 180 && window <= 240, `startup window ${window} s: a few minutes, within Cloud Run's 240 s`)
    assert.equal(startup.initial_delay_seconds ?? 0, 0, 'no delay before the first probe: a fast start takes traffic at once')
    assert.equal(child(child(container, 'liveness_probe'), 'http_get').path, '/healthz', 'a replica catching up is alive')
  })

  it("keep the relay's store in an in-memory volume at the image's data path, capped by the relay at 90 % of it and written through the map", async () => {
    const volume = children(child(relay(), 'template'), 'volumes').find(v => v.empty_dir)
    const dir = child(volume, 'empty_dir')
    assert.equal(dir.medium, 'MEMORY', 'tmpfs, bounded (Cloud Run\'s own file system is memory too, but unbounded)')
    assert.equal(dir.size_limit, '${var.relay_store_mib}Mi')
    const container = appContainer(relay())
    const dataPath = /RELAY_DATA__PATH=(\S+)/.exec(readFileSync(join(ROOT, 'services/relay/Dockerfile'), 'utf8'))?.[1]
    const env = containerEnv(relay())
    assert.ok(dataPath && !env.has('RELAY_DATA__PATH'), 'the store stays where the image keeps it')
    assert.equal(children(container, 'volume_mounts').find(m => m.name === volume?.name)?.mount_path, dataPath, 'the volume is mounted at the store')
    assert.equal((child(container, 'resources').limits as Record<string, string>).memory, '${var.relay_memory_mib}Mi')
    // The cap, with the defaults: 90 % of the volume, as the relay would take from a tmpfs of that size itself
    // (write-map.ts), so that it holds whatever the volume's statfs reports.
    const storeMib = Number(tf.variable.relay_store_mib?.default)
    const memoryMib = Number(tf.variable.relay_memory_mib?.default)
    const formula = /^\$\{floor\(var\.relay_store_mib \* 1048576 \* 9 \/ 10\)\}$/
    assert.match(String(tf.locals.relay_store_cap_bytes), formula)
    const cap = Math.floor((storeMib * 1048576 * 9) / 10)
    assert.equal(env.get('RELAY_DATA__MAX_SIZE')?.value, '${tostring(local.relay_store_cap_bytes)}')
    assert.equal(env.get('RELAY_DATA__WRITE_MAP')?.value, '${tostring(var.relay_store_write_map)}')
    assert.equal(tf.variable.relay_store_write_map?.default, true)
    // The plan refuses a volume that leaves the process less than the fuzzers' peak (README Reliability).
    const [precondition] = children(child(relay(), 'lifecycle'), 'precondition')
    assert.equal(precondition?.condition, '${var.relay_store_mib + 768 <= var.relay_memory_mib}')
    assert.ok(storeMib + 768 <= memoryMib, `the defaults pass it: ${storeMib} + 768 <= ${memoryMib}`)
    // What the relay makes of them, with the values Terraform computes from the defaults.
    const { loadRelayConfig } = await relayConfig()
    assert.deepEqual([...env.keys()].filter(name => name.startsWith('RELAY_DATA__')).sort(), ['RELAY_DATA__MAX_SIZE', 'RELAY_DATA__WRITE_MAP'])
    const loaded = loadRelayConfig(undefined, { RELAY_DATA__MAX_SIZE: String(cap), RELAY_DATA__WRITE_MAP: 'true' })
    assert.ok(loaded.ok, `the relay accepts them: ${loaded.ok ? '' : loaded.errors.join('; ')}`)
    assert.deepEqual([loaded.value.data.max_size, loaded.value.data.write_map], [cap, true])
    assert.ok(cap < storeMib * 1048576, 'under the volume')
  })

  it('scale the mailbox API on its own, between two variables', () => {
    assert.deepEqual(child(child(mailbox(), 'template'), 'scaling'), { max_instance_count: '${var.mailbox_max_instances}', min_instance_count: '${var.mailbox_min_instances}' })
  })

  it('trust exactly the two X-Forwarded-For entries the load balancer appends', () => {
    assert.equal(containerEnv(relay()).get('RELAY_NETWORK__TRUSTED_PROXIES')?.value, '2')
    assert.equal(containerEnv(mailbox()).get('TRUSTED_PROXIES')?.value, '2')
    assert.match(readFileSync(join(TERRAFORM_DIR, 'gateway.tf'), 'utf8'), /"<client-ip>,<load-balancer-ip>"/)
  })

  it('read every secret from Secret Manager, and the public URLs from the domain', () => {
    const secretish = /AUTH|TOKEN|KEY|PASSWORD|SECRET|DATABASE_URL/
    for (const service of [relay(), mailbox()])
      for (const [name, env] of containerEnv(service))
        if (secretish.test(name)) {
          const ref = child(child(env, 'value_source'), 'secret_key_ref')
          assert.match(String(ref.secret), SECRET_REF, `${name} comes from a secret`)
          assert.equal(ref.version, 'latest')
          assert.equal(env.value, undefined, `${name} has no plain value`)
        }
    assert.equal(containerEnv(relay()).get('RELAY_NETWORK__PUBLIC_URL')?.value, '${local.relay_public_url}')
    assert.equal(tf.locals.relay_public_url, 'wss://${var.domain}')
    assert.equal(containerEnv(mailbox()).get('PUBLIC_URL')?.value, '${local.api_public_url}')
    assert.equal(tf.locals.api_public_url, 'https://${var.domain}')
  })

  it('give the mailbox PostgreSQL through the Cloud SQL connection, and verify pushes in the app', () => {
    const template = child(mailbox(), 'template')
    const cloudsql = children(template, 'volumes').find(v => v.cloud_sql_instance)
    assert.deepEqual(child(cloudsql, 'cloud_sql_instance').instances, ['${google_sql_database_instance.mailbox.connection_name}'])
    assert.equal(child(appContainer(mailbox()), 'volume_mounts').mount_path, '/cloudsql')
    const env = containerEnv(mailbox())
    assert.equal(env.get('HINTS_PUSH_SERVICE_ACCOUNT')?.value, '${google_service_account.hints_push.email}')
    assert.equal(env.get('HINTS_PUSH_AUDIENCE')?.value, '${local.push_audience}')
    for (const subscription of Object.values(tf.resource.google_pubsub_subscription ?? {}).filter(s => s.push_config)) {
      const push = child(subscription, 'push_config')
      assert.equal(push.push_endpoint, '${local.push_endpoint}')
      assert.equal(child(push, 'oidc_token').audience, '${local.push_audience}', 'the audience the app checks')
    }
  })
})

describe('data and secrets', () => {
  it('keeps the database backed up with point-in-time recovery and protected from deletion', () => {
    const instance = resource(tf, 'google_sql_database_instance', 'mailbox')
    const backup = child(child(instance, 'settings'), 'backup_configuration')
    assert.equal(backup.enabled, true)
    assert.equal(backup.point_in_time_recovery_enabled, true)
    assert.equal(instance.deletion_protection, '${var.deletion_protection}')
    assert.equal(tf.variable.deletion_protection?.default, true)
    assert.equal(child(child(instance, 'settings'), 'ip_configuration').authorized_networks, undefined, 'no network authorized on the address')
  })

  it('keeps snapshots versioned, pruned by a lifecycle rule, never public', () => {
    const bucket = resource(tf, 'google_storage_bucket', 'backups')
    assert.equal(child(bucket, 'versioning').enabled, true)
    assert.equal(child(child(bucket, 'lifecycle_rule'), 'action').type, 'Delete')
    assert.equal(bucket.public_access_prevention, 'enforced')
    assert.equal(containerEnv(resource(tf, 'google_cloud_run_v2_service', 'relay')).get('RELAY_BACKUP__TARGET')?.value, 'gs://${google_storage_bucket.backups.name}/relay')
  })

  it('writes no secret value in any file: every secret version is generated', () => {
    assert.deepEqual(Object.keys(tf.resource.google_secret_manager_secret_version ?? {}).sort(), ['generated', 'gmp_config', 'mailbox_database_url'])
    const generated = resource(tf, 'google_secret_manager_secret_version', 'generated')
    assert.equal(generated.for_each, '${random_password.secret}')
    assert.equal(generated.secret_data, '${each.value.result}')
    assert.match(String(resource(tf, 'google_secret_manager_secret_version', 'mailbox_database_url').secret_data), /\$\{random_password\.mailbox_db\.result\}/)
    assert.equal(resource(tf, 'google_sql_user', 'mailbox').password, '${random_password.mailbox_db.result}')
    const files = [...tf.files.map(f => join(TERRAFORM_DIR, f)), join(ROOT, 'cloudbuild.yaml')]
    for (const file of files) {
      // Comments may show a value's shape (postgres://mailbox:PASSWORD@…); code may not hold one.
      const text = readFileSync(file, 'utf8').split('\n').filter(line => !/^\s*#/.test(line)).join('\n')
      assert.doesNotMatch(text, /\b(password|secret_data|token|auth|key)\s*=\s*"[^"$]{8,}"/i, `${file}: a literal secret`)
      assert.doesNotMatch(text, /postgres(ql)?:\/\/[^$"\s]*:[^$@"\s]+@/, `${file}: a password in a connection string`)
    }
    assert.ok(!existsSync(join(TERRAFORM_DIR, 'terraform.tfvars')), 'no tfvars file with values in the repository')
  })
})

describe('least privilege', () => {
  /** Every grant in the configuration: [kind of resource, role, member, the resource it is on]. */
  const grants = () =>
    Object.entries(tf.resource)
      .filter(([type]) => /_iam_(member|binding|policy)$/.test(type))
      .flatMap(([type, byName]) => Object.entries(byName).map(([name, g]) => ({ type, name, role: String(g.role), member: String(g.member), on: g })))

  // Who may hold what, and on which kind of resource. Anything else fails.
  const ALLOWED = new Set([
    'google_pubsub_topic_iam_member roles/pubsub.publisher relay',
    'google_pubsub_topic_iam_member roles/pubsub.subscriber relay',
    'google_project_iam_member ${google_project_iam_custom_role.relay_replica_subscriptions[0].name} relay',
    'google_storage_bucket_iam_member roles/storage.objectUser relay',
    'google_secret_manager_secret_iam_member roles/secretmanager.secretAccessor relay',
    'google_project_iam_member roles/cloudtrace.agent each',
    'google_project_iam_member roles/monitoring.metricWriter each',
    'google_project_iam_member roles/cloudsql.client mailbox_api',
    'google_secret_manager_secret_iam_member roles/secretmanager.secretAccessor mailbox_api',
    'google_cloud_run_v2_service_iam_member roles/run.invoker hints_push',
    'google_service_account_iam_member roles/iam.serviceAccountTokenCreator pubsub_agent',
    'google_pubsub_topic_iam_member roles/pubsub.publisher pubsub_agent',
    'google_pubsub_subscription_iam_member roles/pubsub.subscriber pubsub_agent',
    'google_artifact_registry_repository_iam_member roles/artifactregistry.writer deployer',
    'google_cloud_run_v2_service_iam_member roles/run.developer deployer',
    'google_service_account_iam_member roles/iam.serviceAccountUser deployer',
    'google_project_iam_member roles/logging.logWriter deployer',
  ])
  const who = (member: string): string =>
    member === '${local.pubsub_agent}' ? 'pubsub_agent' : member === 'serviceAccount:${each.value}' ? 'each' : (/google_service_account\.([a-z_]+)\.email/.exec(member)?.[1] ?? member)

  it('grants only the allowed roles, additively, to the allowed identities', () => {
    const all = grants()
    assert.ok(all.length >= 14)
    for (const g of all) {
      assert.ok(g.type.endsWith('_iam_member'), `${g.type}.${g.name}: additive grants only (no authoritative binding or policy)`)
      assert.ok(!/roles\/(owner|editor|viewer)$/.test(g.role), `${g.name}: no primitive role`)
      assert.ok(ALLOWED.has(`${g.type} ${g.role} ${who(g.member)}`), `${g.type}.${g.name}: ${g.role} for ${g.member} is not on the allowed list`)
    }
  })

  it('grants at project level only roles with no finer resource, the trace role to the two services', () => {
    const project = grants().filter(g => g.type === 'google_project_iam_member')
    assert.deepEqual([...new Set(project.map(g => g.role))].sort(), [
      '${google_project_iam_custom_role.relay_replica_subscriptions[0].name}',
      'roles/cloudsql.client',
      'roles/cloudtrace.agent',
      'roles/logging.logWriter',
      'roles/monitoring.metricWriter',
    ])
    const trace = resource(tf, 'google_project_iam_member', 'trace_writers')
    assert.deepEqual(trace.for_each, { mailbox_api: '${google_service_account.mailbox_api.email}', relay: '${google_service_account.relay.email}' })
  })

  it('lets the push identity invoke the mailbox service only, and each service read only its own secrets', () => {
    const invoke = resource(tf, 'google_cloud_run_v2_service_iam_member', 'push_invokes_mailbox')
    assert.equal(invoke.name, '${google_cloud_run_v2_service.mailbox_api.name}')
    assert.equal(resource(tf, 'google_secret_manager_secret_iam_member', 'relay_reads').for_each, '${local.relay_secrets}')
    assert.equal(resource(tf, 'google_secret_manager_secret_iam_member', 'mailbox_reads').for_each, '${local.mailbox_secrets}')
    // The relay's: two always, the admin key only with replicas (a for expression filtered on local.replication).
    assert.equal(
      tf.locals.relay_secrets,
      '${merge({ relay_metrics_key = "msr-relay-metrics-key", relay_gmp_config = "msr-relay-gmp-config" }, { for k, v in { relay_admin_key = "msr-relay-admin-key" } : k => v if local.replication })}',
    )
    const mailboxSecrets = Object.values(tf.locals.mailbox_secrets as Record<string, string>)
    assert.deepEqual(mailboxSecrets.sort(), ['msr-mailbox-admin-token', 'msr-mailbox-database-url', 'msr-mailbox-gmp-config', 'msr-mailbox-metrics-key'])
    // Each secret a service reads is one it is granted.
    const relayGranted = { relay_metrics_key: '', relay_gmp_config: '', relay_admin_key: '' }
    const granted = (service: 'relay' | 'mailbox_api') => (service === 'relay' ? relayGranted : tf.locals.mailbox_secrets) as Record<string, string>
    for (const service of ['relay', 'mailbox_api'] as const)
      for (const [name, env] of containerEnv(resource(tf, 'google_cloud_run_v2_service', service))) {
        const secret = env.value_source ? SECRET_REF.exec(String(child(child(env, 'value_source'), 'secret_key_ref').secret))?.[1] : undefined
        if (secret) assert.ok(secret in granted(service), `${service} reads ${name} from ${secret}, which it is granted`)
      }
  })
})

/** The relay's configuration loader, from its build: the schema is the source of truth for every RELAY_ variable. */
const relayConfig = async () =>
  (await import(pathToFileURL(join(ROOT, 'services/relay/dist/src/config.js')).href)) as {
    loadRelayConfig(
      file: string | undefined,
      env: Record<string, string>,
    ): { ok: true; value: { replication: Record<string, unknown>; data: Record<string, unknown> } } | { ok: false; errors: string[] }
  }

/** Stand-ins for values the platform fills in (secrets, Terraform references, the pod's name). */
const standIn = (name: string, value: string | undefined): string =>
  /__(AUTH|KEY)$/.test(name) ? 'a-generated-secret-of-40-characters-0123' : (value ?? '').replace(/\$\(POD_NAME\)/g, 'relay-0').replace(/\$\{[^}]+\}/g, 'msr-relay-events')

describe('relay replicas (opt-in, replication.tf)', () => {
  // Every resource of the platform before replicas existed: with relay_replicas = 1 these, and only these.
  const SINGLE_INSTANCE = [
    'google_artifact_registry_repository.msr', 'google_artifact_registry_repository_iam_member.deployer_pushes', 'google_cloud_run_v2_service.mailbox_api',
    'google_cloud_run_v2_service.relay', 'google_cloud_run_v2_service_iam_member.deployer_deploys', 'google_cloud_run_v2_service_iam_member.push_invokes_mailbox',
    'google_compute_backend_service.mailbox_api', 'google_compute_backend_service.relay', 'google_compute_global_address.gateway', 'google_compute_global_forwarding_rule.http',
    'google_compute_global_forwarding_rule.https', 'google_compute_managed_ssl_certificate.gateway', 'google_compute_region_network_endpoint_group.mailbox_api',
    'google_compute_region_network_endpoint_group.relay', 'google_compute_security_policy.armor', 'google_compute_target_http_proxy.https_redirect',
    'google_compute_target_https_proxy.gateway', 'google_compute_url_map.gateway', 'google_compute_url_map.https_redirect', 'google_monitoring_alert_policy.incident',
    'google_monitoring_alert_policy.slo_burn', 'google_monitoring_custom_service.kit', 'google_monitoring_dashboard.kit', 'google_monitoring_notification_channel.email',
    'google_monitoring_slo.kit', 'google_project_iam_member.deployer_logs', 'google_project_iam_member.mailbox_sql_client', 'google_project_iam_member.metric_writers',
    'google_project_iam_member.trace_writers', 'google_pubsub_subscription.dead_letters', 'google_pubsub_subscription.mailbox_hints',
    'google_pubsub_subscription_iam_member.dead_letter_subscriber', 'google_pubsub_topic.hints', 'google_pubsub_topic.hints_dead_letter',
    'google_pubsub_topic_iam_member.dead_letter_publisher', 'google_pubsub_topic_iam_member.relay_publishes', 'google_secret_manager_secret.all',
    'google_secret_manager_secret_iam_member.mailbox_reads', 'google_secret_manager_secret_iam_member.relay_reads', 'google_secret_manager_secret_version.generated',
    'google_secret_manager_secret_version.gmp_config', 'google_secret_manager_secret_version.mailbox_database_url', 'google_service_account.deployer',
    'google_service_account.hints_push', 'google_service_account.mailbox_api', 'google_service_account.relay', 'google_service_account_iam_member.deployer_acts_as',
    'google_service_account_iam_member.pubsub_mints_push_tokens', 'google_sql_database.mailbox', 'google_sql_database_instance.mailbox', 'google_sql_user.mailbox',
    'google_storage_bucket.backups', 'google_storage_bucket_iam_member.relay_snapshots', 'random_password.mailbox_db', 'random_password.secret',
  ]
  const ONLY_WITH_REPLICAS = '${local.replication ? 1 : 0}'
  const relay = () => resource(tf, 'google_cloud_run_v2_service', 'relay')
  const kit = (file: string) => parseYaml(readFileSync(join(ROOT, 'infra/monitoring', file), 'utf8')) as Record<string, Array<{ name: string; replication?: boolean; expr?: string; panels?: unknown[] }>>

  it('creates nothing new by default: one instance, every added resource counted 0, no secret, env, alert or dashboard added', () => {
    assert.equal(tf.variable.relay_replicas?.default, 1)
    const gate = /^\$\{var\.relay_replicas > (\d+)\}$/.exec(String(tf.locals.replication))
    assert.ok(gate, `local.replication is var.relay_replicas > N: ${String(tf.locals.replication)}`)
    assert.ok(1 <= Number(gate[1]), 'and false for the default of 1')
    const all = Object.entries(tf.resource).flatMap(([type, byName]) => Object.entries(byName).map(([name, block]) => ({ address: `${type}.${name}`, block })))
    const added = all.filter(r => !SINGLE_INSTANCE.includes(r.address))
    assert.ok(added.length >= 5, `the replica resources: ${added.map(r => r.address).join(', ')}`)
    for (const r of added) assert.equal(r.block.count, ONLY_WITH_REPLICAS, `${r.address} exists only with replicas`)
    for (const address of SINGLE_INSTANCE) assert.ok(all.some(r => r.address === address), `${address} is still there`)
    // The for_each resources that gain members with replicas gain them only then.
    assert.match(String(tf.locals.relay_secrets), /\{ for k, v in \{ relay_admin_key = "msr-relay-admin-key" \} : k => v if local\.replication \}/)
    assert.match(String(tf.locals.generated_secrets), /local\.replication \? \["relay_admin_key"\] : \[\]/)
    assert.deepEqual(dynamicEnv(relay()).map(e => e.for_each), ['${local.relay_replication_env}', '${local.replication ? ["RELAY_ADMIN__KEY"] : []}'])
    assert.match(String(tf.locals.relay_replication_env), / : name => value if local\.replication \}\}$/)
    assert.match(String(tf.locals.kit_alerts), /: a if local\.replication \|\| !try\(a\.replication, false\)\]/)
    assert.match(String(tf.locals.kit_dashboards), /: d if local\.replication \|\| !try\(d\.replication, false\)\]/)
    // Every alert and dashboard about replicas is marked, so the default makes none of them.
    for (const a of kit('alerts.yaml').alerts ?? [])
      if (/msr_relay_replication_|msr-relay-events/.test(String(a.expr)) || /^51[0-3]-/.test(String((a as { runbook?: string }).runbook))) assert.equal(a.replication, true, `alert ${a.name}`)
    for (const d of kit('dashboards.yaml').dashboards ?? []) assert.equal(!!d.replication, JSON.stringify(d.panels).includes('msr_relay_replication_'), `dashboard ${d.name}`)
  })

  it('makes the events topic with a retention that covers the snapshot interval plus the seek margin', () => {
    const topic = resource(tf, 'google_pubsub_topic', 'relay_events')
    assert.equal(topic.message_retention_duration, '${local.relay_events_retention_sec}s')
    assert.equal(tf.locals.relay_events_retention_sec, '${var.relay_events_retention_hours * 3600}')
    const retention = tf.variable.relay_events_retention_hours as Block
    const interval = Number(tf.locals.relay_backup_interval_minutes)
    const margin = Number(tf.locals.relay_seek_margin_minutes)
    assert.ok(interval > 0 && margin >= 10, `interval ${interval} min, margin ${margin} min`)
    assert.ok((retention.default as number) * 3600 >= (interval + margin) * 60, 'the default covers them')
    assert.equal(retention.default, 168, '7 days by default')
    assert.match(String(child(retention, 'validation').condition), /var\.relay_events_retention_hours >= 24 && var\.relay_events_retention_hours <= 744/, 'at least a day, at most 31')
    const check = child(child(topic, 'lifecycle'), 'precondition')
    assert.equal(check.condition, '${local.relay_events_retention_sec >= (local.relay_backup_interval_minutes + local.relay_seek_margin_minutes) * 60}')
    // The interval checked is the one the relay runs with.
    assert.equal(containerEnv(relay()).get('RELAY_BACKUP__INTERVAL')?.value, '${local.relay_backup_interval_minutes}m')
    assert.equal(tf.variable.relay_replicas && String(child(tf.variable.relay_replicas, 'validation').condition).includes('var.relay_replicas <= 5'), true, 'a bounded maximum')
  })

  it('grants publish and attach on the events topic only, and at project level a custom role of four subscription permissions', () => {
    const relayMember = 'serviceAccount:${google_service_account.relay.email}'
    const onTopic = Object.entries(tf.resource.google_pubsub_topic_iam_member ?? {}).filter(([, g]) => g.topic === '${google_pubsub_topic.relay_events[0].name}')
    assert.deepEqual(onTopic.map(([, g]) => g.role).sort(), ['roles/pubsub.publisher', 'roles/pubsub.subscriber'])
    for (const [, g] of onTopic) assert.equal(g.member, relayMember)
    const role = resource(tf, 'google_project_iam_custom_role', 'relay_replica_subscriptions')
    assert.deepEqual(role.permissions, ['pubsub.subscriptions.consume', 'pubsub.subscriptions.create', 'pubsub.subscriptions.delete', 'pubsub.subscriptions.get'])
    const projectGrants = Object.values(tf.resource.google_project_iam_member ?? {})
    assert.ok(!projectGrants.some(g => /^roles\/pubsub\./.test(String(g.role))), 'no predefined Pub/Sub role (editor, subscriber, admin…) at project level')
    assert.deepEqual(projectGrants.filter(g => String(g.role).includes('relay_replica_subscriptions')).map(g => g.member), [relayMember])
    assert.match(readFileSync(join(TERRAFORM_DIR, 'replication.tf'), 'utf8'), /IAM conditions cannot\n# +match resource names/, 'the reason is written beside the grant')
  })

  it('wires [replication] into the relay: the topic, a per-boot subscription (random id), and the admin key from a secret', async () => {
    const names = [...String(tf.locals.relay_replication_env).matchAll(/(RELAY_[A-Z_]+) += ("[^"]*"|[^\n]+)/g)].map(m => [m[1] as string, (m[2] as string).replace(/^"|"$/g, '')] as const)
    const env = new Map(names)
    assert.equal(env.get('RELAY_REPLICATION__TOPIC'), 'one(google_pubsub_topic.relay_events[*].name)')
    assert.equal(env.get('RELAY_REPLICATION__SUBSCRIPTION'), 'auto', 'each instance makes its own (Cloud Run instances have no stable id)')
    assert.equal(env.get('RELAY_REPLICATION__ON_BUS_OUTAGE'), 'var.relay_on_bus_outage')
    assert.ok(!env.has('RELAY_REPLICATION__REPLICA_ID'), 'a random id per start: its subscription is deleted at a clean stop')
    const admin = dynamicEnv(relay())[1] as Block
    assert.equal(child(child(child(admin, 'content'), 'value_source'), 'secret_key_ref').secret, '${google_secret_manager_secret.all["relay_admin_key"].secret_id}')
    // What the relay makes of these variables: a valid [replication] section, every key known to its schema.
    const { loadRelayConfig } = await relayConfig()
    // Terraform expressions resolved as the default would: a variable's default, the topic's name.
    const resolve = (v: string) =>
      v.startsWith('one(') ? String(resource(tf, 'google_pubsub_topic', 'relay_events').name) : v.startsWith('var.') ? String(tf.variable[v.slice(4)]?.default ?? 'my-project') : v
    const vars = Object.fromEntries([...names.map(([n, v]) => [n, standIn(n, resolve(v))]), ['RELAY_ADMIN__KEY', standIn('RELAY_ADMIN__KEY', '')]])
    const loaded = loadRelayConfig(undefined, vars)
    assert.ok(loaded.ok, `the relay accepts them: ${loaded.ok ? '' : loaded.errors.join('; ')}`)
    assert.equal(loaded.value.replication.subscription, 'auto')
  })
})

describe('the GKE StatefulSet variant (infra/gke)', () => {
  type Doc = { kind: string; metadata: { name: string }; spec: Record<string, unknown> }
  const docs = (): Doc[] =>
    readdirSync(join(ROOT, 'infra/gke'))
      .filter(f => f.endsWith('.yaml'))
      .flatMap(f => parseAllDocuments(readFileSync(join(ROOT, 'infra/gke', f), 'utf8')).map(d => d.toJS() as Doc))
  type Container = { env: { name: string; value?: string; valueFrom?: { secretKeyRef?: unknown; fieldRef?: { fieldPath: string } } }[]; readinessProbe?: { httpGet: { path: string } }; startupProbe?: { httpGet: { path: string } }; livenessProbe?: { httpGet: { path: string } }; volumeMounts: { name: string; mountPath: string }[] }
  const statefulSet = () => docs().find(d => d.kind === 'StatefulSet') as Doc
  const relayContainer = () => ((statefulSet().spec.template as { spec: { containers: Container[] } }).spec.containers[0] as Container)

  it('parses, with a StatefulSet, its headless service and a client service', () => {
    const kinds = docs().map(d => d.kind)
    for (const k of ['StatefulSet', 'Service', 'ServiceAccount']) assert.ok(kinds.includes(k), k)
    const headless = docs().find(d => d.kind === 'Service' && d.spec.clusterIP === 'None')
    assert.equal(statefulSet().spec.serviceName, headless?.metadata.name)
    assert.ok(docs().some(d => d.kind === 'Service' && d.spec.sessionAffinity === 'ClientIP'), 'clients come back to the replica they read from')
  })

  it('gives each replica its stable name as replica id, its own pre-made subscription, its own disk and a readiness probe', () => {
    const env = new Map(relayContainer().env.map(e => [e.name, e]))
    assert.equal(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name')
    assert.equal(env.get('RELAY_REPLICATION__REPLICA_ID')?.value, '$(POD_NAME)')
    assert.equal(env.get('RELAY_REPLICATION__SUBSCRIPTION')?.value, `${env.get('RELAY_REPLICATION__TOPIC')?.value}-$(POD_NAME)`, 'named, so the relay neither makes nor deletes it')
    const claims = statefulSet().spec.volumeClaimTemplates as { metadata: { name: string }; spec: { accessModes: string[] } }[]
    assert.equal(claims.length, 1)
    assert.deepEqual(claims[0]?.spec.accessModes, ['ReadWriteOnce'])
    const mount = relayContainer().volumeMounts.find(m => m.name === claims[0]?.metadata.name)
    assert.ok(mount && String(env.get('RELAY_DATA__PATH')?.value).startsWith(`${mount.mountPath}/`), 'the store is on the claim')
    assert.equal(relayContainer().readinessProbe?.httpGet.path, '/readyz')
    assert.equal(relayContainer().startupProbe?.httpGet.path, '/readyz', 'no traffic before caught up')
    assert.equal(relayContainer().livenessProbe?.httpGet.path, '/healthz')
    for (const [name, e] of env) if (/__(AUTH|KEY)$/.test(name)) assert.ok(e.valueFrom?.secretKeyRef && e.value === undefined, `${name} comes from a Secret`)
  })

  it('sets only variables the relay knows: its configuration schema accepts them all', async () => {
    const { loadRelayConfig } = await relayConfig()
    const vars = Object.fromEntries(relayContainer().env.filter(e => e.name.startsWith('RELAY_')).map(e => [e.name, standIn(e.name, e.value)]))
    assert.ok(Object.keys(vars).length >= 10)
    const loaded = loadRelayConfig(undefined, vars)
    assert.ok(loaded.ok, `the relay accepts them: ${loaded.ok ? '' : loaded.errors.join('; ')}`)
    assert.equal(loaded.value.replication.replica_id, 'relay-0')
    assert.equal(loaded.value.replication.subscription, 'msr-relay-events-relay-0')
  })
})

describe('cloudbuild.yaml and make deploy', () => {
  type Step = { id: string; name: string; args: string[]; waitFor?: string[] }
  const build = () => parseYaml(readFileSync(join(ROOT, 'cloudbuild.yaml'), 'utf8')) as { steps: Step[]; serviceAccount: string; images: string[] }

  it('tests, then builds, pushes and deploys both images, as the deployer identity', () => {
    const { steps, serviceAccount, images } = build()
    assert.deepEqual(steps.map(s => s.id), ['test', 'build-relay', 'push-relay', 'deploy-relay', 'build-mailbox-api', 'push-mailbox-api', 'deploy-mailbox-api'])
    assert.deepEqual(steps[0]?.args, ['-c', '.ci/run'], 'the repository\'s CI entry point')
    assert.deepEqual(steps.find(s => s.id === 'build-mailbox-api')?.waitFor, ['test'])
    assert.equal(serviceAccount, 'projects/$PROJECT_ID/serviceAccounts/msr-deployer@$PROJECT_ID.iam.gserviceaccount.com')
    assert.equal(resource(tf, 'google_service_account', 'deployer').account_id, 'msr-deployer')
    assert.equal(images.length, 2)
  })

  it('deploys only an image to the services Terraform defines, leaving every other setting to Terraform', () => {
    const names = new Set(Object.values(tf.resource.google_cloud_run_v2_service ?? {}).map(s => String(s.name)))
    for (const step of build().steps.filter(s => s.id.startsWith('deploy-'))) {
      assert.deepEqual(step.args.slice(0, 2), ['run', 'deploy'])
      assert.ok(names.has(step.args[2] as string), `${step.id} deploys a Terraform service`)
      assert.deepEqual(step.args.slice(3).map(a => a.split('=')[0]).sort(), ['--container', '--image', '--region'], `${step.id}: the app container's image and region only`)
      const service = Object.values(tf.resource.google_cloud_run_v2_service ?? {}).find(s => s.name === step.args[2]) as Block
      assert.equal(step.args[3], `--container=${String(appContainer(service).name)}`, 'the image goes to the app container, not the metrics sidecar')
      assert.match(step.args[4] as string, /^--image=\$\{_REGION\}-docker\.pkg\.dev\/\$PROJECT_ID\/\$\{_REPOSITORY\}\/(relay|mailbox-api):\$BUILD_ID$/)
    }
  })

  it('make deploy wraps it and refuses to run without a project', () => {
    const makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8')
    assert.match(makefile, /^deploy:\n(\t.*\n)*\tgcloud builds submit .*--config cloudbuild\.yaml/m)
    let failed: { status: number; stderr: string } | undefined
    try {
      execFileSync('make', ['-s', 'deploy'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PROJECT_ID: '' } })
    } catch (error) {
      failed = error as { status: number; stderr: string }
    }
    assert.equal(failed?.status, 2)
    assert.match(String(failed?.stderr), /set PROJECT_ID/)
  })
})
