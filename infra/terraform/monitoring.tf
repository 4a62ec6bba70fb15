# Cloud Monitoring: the dashboards, the incident alerts, the SLOs and their burn-rate alerts, all read from
# infra/monitoring/*.yaml (the same files the local Prometheus and Grafana are generated from, so the
# queries cannot drift apart), and the Managed Service for Prometheus sidecar's configuration.
#
# How metrics get here: each Cloud Run service runs Google's Managed Service for Prometheus sidecar
# (run-gmp-sidecar, services.tf) beside the app. It scrapes the app's /metrics over the instance's
# loopback every 30 s and writes the samples to Cloud Monitoring as prometheus.googleapis.com/* metrics,
# queried with PromQL: the alert policies and dashboard charts below use the very expressions Prometheus
# evaluates locally. /metrics needs the service's metrics key: the sidecar's RunMonitoring configuration
# passes it as the `auth` query parameter (the sidecar cannot send headers; the services take either), so
# the configuration is a secret of its own, mounted as a file, generated from the key here.

locals {
  # Alerts and dashboards marked `replication: true` read the metrics of relay replicas: they exist here only
  # with relay_replicas > 1 (replication.tf), so the default creates nothing for them.
  kit_alert_names = [for a in yamldecode(file("${path.module}/../monitoring/alerts.yaml")).alerts : a.name]
  kit_alerts      = [for a in yamldecode(file("${path.module}/../monitoring/alerts.yaml")).alerts : a if local.replication || !try(a.replication, false)]
  kit_dashboards  = [for d in yamldecode(file("${path.module}/../monitoring/dashboards.yaml")).dashboards : d if local.replication || !try(d.replication, false)]
  kit_slos        = yamldecode(file("${path.module}/../monitoring/slos.yaml"))

  # Thresholds that follow this configuration rather than alerts.yaml: a snapshot older than half of what the
  # events topic keeps before the seek margin (a new replica could not replay the rest).
  derived_threshold = { SnapshotOlderThanRetention = floor((local.relay_events_retention_sec - local.relay_seek_margin_minutes * 60) / 2) }
  # Alert thresholds: the defaults of alerts.yaml (or derived above), overridden by var.alert_thresholds.
  alert_threshold = { for a in local.kit_alerts : a.name => lookup(var.alert_thresholds, a.name, lookup(local.derived_threshold, a.name, a.threshold)) }
  slo_target      = { for s in local.kit_slos.slos : s.name => lookup(var.slo_targets, s.name, s.target) }

  notification_channels = concat(var.notification_channels, [for c in google_monitoring_notification_channel.email : c.id])

  # Markdown in each alert's notification: what it means and the runbook section.
  runbook_link = { for a in local.kit_alerts : a.name => var.runbook_url == "" ? "docs/runbook.md#${a.runbook}" : "${var.runbook_url}#${a.runbook}" }

  # Burn-rate alerts: one per SLO and burn rate, the expression as generate.mjs builds it for Prometheus.
  slo_burn_alerts = merge([for slo in local.kit_slos.slos : {
    for rate in local.kit_slos.burn_rates : "${slo.name}-${rate.name}" => {
      slo  = slo
      rate = rate
      expr = replace(replace(replace(replace(local.kit_slos.burn_alert,
        "$error_ratio_long", replace(slo.error_ratio, "$window", rate.long)),
        "$error_ratio_short", replace(slo.error_ratio, "$window", rate.short)),
        "$factor", tostring(rate.factor)),
      "$target", tostring(local.slo_target[slo.name]))
    }
  }]...)

  # A Cloud Monitoring filter for a selector of slos.yaml (Prometheus metrics as Managed Service for
  # Prometheus stores them; PromQL's regex matchers are full matches, as monitoring.regex.full_match is).
  slo_matcher = {
    "="  = "metric.labels.%s = \"%s\""
    "!=" = "metric.labels.%s != \"%s\""
    "=~" = "metric.labels.%s = monitoring.regex.full_match(\"%s\")"
    "!~" = "NOT metric.labels.%s = monitoring.regex.full_match(\"%s\")"
  }
  slo_filters = {
    for s in local.kit_slos.slos : s.name => {
      for part, selector in try(s.cloud.ratio, { latency = s.cloud.latency }) : part => join(" AND ", concat(
        ["resource.type = \"prometheus_target\"", "metric.type = \"prometheus.googleapis.com/${selector.metric}/${part == "latency" ? "histogram" : "counter"}\""],
        [for m in selector.matchers : format(local.slo_matcher[m.op], m.label, m.value)],
      ))
    }
  }

  # The sidecar's RunMonitoring configuration per service: `job` becomes metadata.name. (The key is read in
  # the resource: a sensitive value cannot be part of a for_each map.)
  gmp_config = {
    relay   = { name = "relay", port = "8080" }
    mailbox = { name = "mailbox", port = "8081" }
  }
}

resource "google_secret_manager_secret_version" "gmp_config" {
  for_each = local.gmp_config
  secret   = google_secret_manager_secret.all["${each.key}_gmp_config"].id
  secret_data = yamlencode({
    apiVersion = "monitoring.googleapis.com/v1beta"
    kind       = "RunMonitoring"
    metadata   = { name = each.value.name }
    spec = {
      endpoints = [{
        port     = each.value.port
        path     = "/metrics"
        interval = "30s"
        params   = { auth = [random_password.secret["${each.key}_metrics_key"].result] }
      }]
    }
  })
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  display_name = "msr alerts: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
}

# --- dashboards: one per dashboard of dashboards.yaml, two charts a row

resource "google_monitoring_dashboard" "kit" {
  for_each = { for d in local.kit_dashboards : d.name => d }
  dashboard_json = jsonencode({
    displayName = each.value.title
    mosaicLayout = {
      columns = 48
      tiles = [for i, p in each.value.panels : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = {
          title = p.title
          xyChart = {
            dataSets = [for q in p.queries : { plotType = "LINE", targetAxis = "Y1", timeSeriesQuery = { prometheusQuery = q.expr } }]
            yAxis    = { label = p.unit, scale = "LINEAR" }
          }
        }
      }]
    }
  })
}

# --- incident alerts: one PromQL policy each, linked to its runbook section

resource "google_monitoring_alert_policy" "incident" {
  for_each              = { for a in local.kit_alerts : a.name => a }
  display_name          = "msr ${each.key}"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels

  conditions {
    display_name = each.value.summary
    condition_prometheus_query_language {
      query               = replace(each.value.expr, "$threshold", tostring(local.alert_threshold[each.key]))
      duration            = each.value.for == "0m" ? "0s" : "${tonumber(trimsuffix(each.value.for, "m")) * 60}s"
      evaluation_interval = "60s"
      alert_rule          = each.key
      labels              = { service = each.value.service }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${each.value.summary} Threshold ${local.alert_threshold[each.key]}.\n\nRunbook: ${local.runbook_link[each.key]}"
  }

  lifecycle {
    precondition {
      condition     = alltrue([for k in keys(var.alert_thresholds) : contains(local.kit_alert_names, k)])
      error_message = "alert_thresholds names an alert that infra/monitoring/alerts.yaml does not define."
    }
  }
}

# --- SLOs: a custom service per platform service, one SLO each, burn-rate alerts on the same SLIs

resource "google_monitoring_custom_service" "kit" {
  for_each     = toset(distinct([for s in local.kit_slos.slos : s.service]))
  service_id   = "msr-${each.key}"
  display_name = "msr ${each.key}"
}

resource "google_monitoring_slo" "kit" {
  for_each            = { for s in local.kit_slos.slos : s.name => s }
  service             = google_monitoring_custom_service.kit[each.value.service].service_id
  slo_id              = each.key
  display_name        = each.value.title
  goal                = local.slo_target[each.key]
  rolling_period_days = tonumber(trimsuffix(local.kit_slos.window, "d"))

  request_based_sli {
    dynamic "good_total_ratio" {
      for_each = can(each.value.cloud.ratio) ? [1] : []
      content {
        bad_service_filter   = local.slo_filters[each.key].bad
        total_service_filter = local.slo_filters[each.key].total
      }
    }
    dynamic "distribution_cut" {
      for_each = can(each.value.cloud.latency) ? [1] : []
      content {
        distribution_filter = local.slo_filters[each.key].latency
        range {
          max = each.value.cloud.latency.le
        }
      }
    }
  }
}

resource "google_monitoring_alert_policy" "slo_burn" {
  for_each              = local.slo_burn_alerts
  display_name          = "msr SLO ${each.value.slo.title}: ${each.value.rate.name} burn"
  combiner              = "OR"
  severity              = each.value.rate.severity == "page" ? "CRITICAL" : "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "${each.value.slo.title}: budget burning over ${each.value.rate.factor}x (${each.value.rate.long} and ${each.value.rate.short})"
    condition_prometheus_query_language {
      query               = each.value.expr
      duration            = "0s"
      evaluation_interval = "60s"
      alert_rule          = "SLOBurn_${replace(each.value.slo.name, "-", "_")}_${each.value.rate.name}"
      labels              = { service = each.value.slo.service, slo = each.value.slo.name }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${each.value.slo.description} Target ${local.slo_target[each.value.slo.name]} over ${local.kit_slos.window}: docs/slo.md (${google_monitoring_slo.kit[each.value.slo.name].name})."
  }
}
