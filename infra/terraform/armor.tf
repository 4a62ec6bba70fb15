# Cloud Armor on both backends (one policy each, from one definition). Rules, first match wins:
#   50   /metrics is a 404 from outside: metrics stay internal (the relay is the URL map's default, so
#        its /metrics would otherwise be reachable, and a key in `?auth=` would land in this log); the
#        Managed Prometheus sidecar scrapes each instance over its loopback (monitoring.tf)
#   100  the IP allowlist (allowed_ip_ranges): anyone else gets 403; absent when the list is empty
#   200… the API only: Google's preconfigured WAF rules at sensitivity 1 (the fewest false positives),
#        never reading the Authorization header (a NIP-98 token is base64 JSON that would look like anything)
#   1000 rate-based ban per client IP: over rate_limit_requests per rate_limit_interval_sec → 429 for
#        ban_duration_sec
#   default: allow
# The relay backend has no WAF rules: they would see only WebSocket upgrades, never the frames.
# VERBOSE logging names the WAF signature that matched in the load balancer's request log.

locals {
  allowlist_expression = join(" || ", [for range in var.allowed_ip_ranges : "inIpRange(origin.ip, '${range}')"])
  waf_rule_sets        = ["sqli-v33-stable", "xss-v33-stable", "lfi-v33-stable", "rce-v33-stable", "protocolattack-v33-stable", "scannerdetection-v33-stable"]
  armor_policies = {
    relay = { name = "msr-relay-armor", description = "mls-secure-relay relay: IP allowlist, rate-based ban per IP", waf = false }
    api   = { name = "msr-api-armor", description = "mls-secure-relay mailbox API: IP allowlist, WAF, rate-based ban per IP", waf = true }
  }
}

resource "google_compute_security_policy" "armor" {
  for_each    = local.armor_policies
  name        = each.value.name
  description = each.value.description
  type        = "CLOUD_ARMOR"

  advanced_options_config {
    log_level = "VERBOSE"
  }

  rule {
    priority    = 50
    action      = "deny(404)"
    description = "metrics stay internal"
    match {
      expr {
        expression = "request.path.lower().startsWith('/metrics')"
      }
    }
  }

  dynamic "rule" {
    for_each = length(var.allowed_ip_ranges) > 0 ? [1] : []
    content {
      priority    = 100
      action      = "deny(403)"
      description = "not in allowed_ip_ranges"
      match {
        expr {
          expression = "!(${local.allowlist_expression})"
        }
      }
    }
  }

  dynamic "rule" {
    for_each = each.value.waf ? local.waf_rule_sets : []
    content {
      priority    = 200 + rule.key
      action      = "deny(403)"
      description = "WAF ${rule.value}"
      match {
        expr {
          expression = "evaluatePreconfiguredWaf('${rule.value}', {'sensitivity': 1})"
        }
      }
      preconfigured_waf_config {
        exclusion {
          target_rule_set = rule.value
          request_header {
            operator = "EQUALS"
            value    = "authorization"
          }
        }
      }
    }
  }

  rule {
    priority    = 1000
    action      = "rate_based_ban"
    description = "rate-based ban per client IP"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action   = "allow"
      exceed_action    = "deny(429)"
      enforce_on_key   = "IP"
      ban_duration_sec = var.ban_duration_sec
      rate_limit_threshold {
        count        = var.rate_limit_requests
        interval_sec = var.rate_limit_interval_sec
      }
    }
  }

  rule {
    priority    = 2147483647
    action      = "allow"
    description = "default"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}
