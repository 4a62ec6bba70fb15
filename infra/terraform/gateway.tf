# The shared gateway: one global external Application Load Balancer, one host for both services.
#   https://DOMAIN/api/v1, /api/v1/*  → mailbox API (serverless NEG → Cloud Run msr-mailbox-api)
#   https://DOMAIN/api/healthz, /api/readyz → the mailbox API's /healthz, /readyz
#   everything else, WebSocket upgrades included → relay (serverless NEG → Cloud Run msr-relay)
#   http://DOMAIN/* → 301 to https
# A serverless NEG's backend service takes no timeout of its own: the Cloud Run request timeout bounds a
# request, so a WebSocket session lasts at most the relay's 3600 s (services.tf); clients reconnect then.
# The load balancer appends "<client-ip>,<load-balancer-ip>" to X-Forwarded-For: both services trust
# 2 proxies, so a client's own X-Forwarded-For entries are never taken as its address.

resource "google_compute_global_address" "gateway" {
  name = "msr-gateway"
}

resource "google_compute_managed_ssl_certificate" "gateway" {
  name = "msr-gateway"
  managed {
    domains = [var.domain]
  }
}

resource "google_compute_region_network_endpoint_group" "relay" {
  name                  = "msr-relay"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.relay.name
  }
}

resource "google_compute_region_network_endpoint_group" "mailbox_api" {
  name                  = "msr-mailbox-api"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.mailbox_api.name
  }
}

# Every request is logged with Cloud Armor's decision (enforcedSecurityPolicy): denials are found there.
resource "google_compute_backend_service" "relay" {
  name                  = "msr-relay"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.armor["relay"].id
  backend {
    group = google_compute_region_network_endpoint_group.relay.id
  }
  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_backend_service" "mailbox_api" {
  name                  = "msr-mailbox-api"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.armor["api"].id
  backend {
    group = google_compute_region_network_endpoint_group.mailbox_api.id
  }
  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "gateway" {
  name            = "msr-gateway"
  default_service = google_compute_backend_service.relay.id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "platform"
  }

  path_matcher {
    name            = "platform"
    default_service = google_compute_backend_service.relay.id

    path_rule {
      paths   = ["/api/v1", "/api/v1/*"]
      service = google_compute_backend_service.mailbox_api.id
    }

    # The API's probes, under /api so that they do not collide with the relay's own /healthz and /readyz.
    path_rule {
      paths   = ["/api/healthz"]
      service = google_compute_backend_service.mailbox_api.id
      route_action {
        url_rewrite {
          path_prefix_rewrite = "/healthz"
        }
      }
    }

    path_rule {
      paths   = ["/api/readyz"]
      service = google_compute_backend_service.mailbox_api.id
      route_action {
        url_rewrite {
          path_prefix_rewrite = "/readyz"
        }
      }
    }
  }
}

resource "google_compute_target_https_proxy" "gateway" {
  name             = "msr-gateway"
  url_map          = google_compute_url_map.gateway.id
  ssl_certificates = [google_compute_managed_ssl_certificate.gateway.id]
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "msr-gateway-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.gateway.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.gateway.id
}

# Plain HTTP only redirects: nothing is served unencrypted.
resource "google_compute_url_map" "https_redirect" {
  name = "msr-gateway-https-redirect"
  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "https_redirect" {
  name    = "msr-gateway-https-redirect"
  url_map = google_compute_url_map.https_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "msr-gateway-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.gateway.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.https_redirect.id
}
