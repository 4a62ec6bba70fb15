# The two Cloud Run services. Terraform owns everything but the image: `make deploy` (cloudbuild.yaml)
# rolls out new images as new revisions, and Terraform leaves the image alone afterwards.
# Both are reachable only through the load balancer (ingress INTERNAL_LOAD_BALANCER, i.e.
# internal-and-cloud-load-balancing). They are public services (Nostr clients, NIP-98 callers), so Cloud
# Run's invoker IAM check is off: the apps authenticate (NIP-42, NIP-98, the push OIDC token verified in
# the app) and Cloud Armor filters in front.

resource "google_artifact_registry_repository" "msr" {
  repository_id = "msr"
  format        = "DOCKER"
  location      = var.region
  description   = "mls-secure-relay images"
}

# The relay: relay_replicas instances, min = max (1 by default: one instance, LMDB local to it; more are
# replicas coupled by the events topic, replication.tf), gen2, CPU always allocated (fan-out, the drainers
# and snapshots run between requests), session affinity (a client reconnecting comes back to the replica it
# read from), one-hour requests for WebSocket sessions.
# Its store is an in-memory volume (tmpfs) of relay_store_mib at /data, the image's data.path: Cloud Run's
# own file system is memory too, but nothing bounds it: uncapped, a store outgrowing the instance would end
# it (and then the next, which restores the same snapshot). The relay caps the store at 90 % of the volume
# and refuses EVENTs past it, and writes it through LMDB's writable map (relay_store_write_map).
locals {
  relay_store_cap_bytes = floor(var.relay_store_mib * 1048576 * 9 / 10)
}

resource "google_cloud_run_v2_service" "relay" {
  name                 = "msr-relay"
  location             = var.region
  ingress              = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  invoker_iam_disabled = true
  deletion_protection  = var.deletion_protection

  template {
    service_account                  = google_service_account.relay.email
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    timeout                          = "3600s"
    session_affinity                 = true
    max_instance_request_concurrency = 1000

    scaling {
      min_instance_count = var.relay_replicas
      max_instance_count = var.relay_replicas
    }

    containers {
      name  = "relay"
      image = var.relay_image
      ports {
        container_port = 8080
      }
      resources {
        limits = {
          cpu    = "2"
          memory = "${var.relay_memory_mib}Mi"
        }
        cpu_idle          = false
        startup_cpu_boost = true
      }
      volume_mounts {
        name       = "store"
        mount_path = "/data"
      }
      env {
        name  = "RELAY_DATA__MAX_SIZE"
        value = tostring(local.relay_store_cap_bytes)
      }
      env {
        name  = "RELAY_DATA__WRITE_MAP"
        value = tostring(var.relay_store_write_map)
      }

      # The URL clients use; NIP-42 AUTH events must name it.
      env {
        name  = "RELAY_NETWORK__PUBLIC_URL"
        value = local.relay_public_url
      }
      # X-Forwarded-For ends "<client-ip>,<load-balancer-ip>" (gateway.tf).
      env {
        name  = "RELAY_NETWORK__TRUSTED_PROXIES"
        value = "2"
      }
      env {
        name  = "RELAY_METRICS__ENABLED"
        value = "true"
      }
      env {
        name = "RELAY_METRICS__AUTH"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.all["relay_metrics_key"].secret_id
            version = "latest"
          }
        }
      }
      # Routing hints of 445/446 to the hint topics (bus.tf).
      env {
        name  = "RELAY_HINTS__TRANSPORT"
        value = "pubsub"
      }
      env {
        name  = "RELAY_HINTS__PROJECT_ID"
        value = var.project_id
      }
      # The instance's disk is memory: snapshots go to Cloud Storage, and a new instance restores the
      # newest before it reports ready.
      env {
        name  = "RELAY_BACKUP__TARGET"
        value = "gs://${google_storage_bucket.backups.name}/relay"
      }
      env {
        name  = "RELAY_BACKUP__INTERVAL"
        value = "${local.relay_backup_interval_minutes}m"
      }
      # Replicas only (replication.tf): the [replication] section, and the admin key of GET
      # /admin/fingerprint (compare replicas, docs/runbook.md).
      dynamic "env" {
        for_each = local.relay_replication_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.replication ? ["RELAY_ADMIN__KEY"] : []
        content {
          name = env.value
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.all["relay_admin_key"].secret_id
              version = "latest"
            }
          }
        }
      }
      # Spans to Cloud Trace; 1 % of the traces the relay starts (docs/tracing.md).
      env {
        name  = "OTEL_TRACES_EXPORTER"
        value = "gcp"
      }
      env {
        name  = "OTEL_TRACES_SAMPLER"
        value = "parentbased_traceidratio"
      }
      env {
        name  = "OTEL_TRACES_SAMPLER_ARG"
        value = "0.01"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }

      # No traffic before /readyz answers 200: the newest snapshot restored and, with replicas, the events
      # topic's backlog applied (a bootstrap: seconds here, minutes for a large store or a long seek). Up to
      # 60 × 4 s = 240 s from the container's start, the longest failure_threshold × period_seconds Cloud Run
      # allows; no initial delay, which would hold back every start, the fast ones too. Past it the instance is
      # stopped and replaced (docs/runbook.md 5.14). Liveness stays on /healthz: a replica catching up is alive.
      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 4
        failure_threshold = 60
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }

    # Managed Service for Prometheus: scrapes /metrics over the instance's loopback and writes the
    # samples to Cloud Monitoring (monitoring.tf); its configuration, with the metrics key, is a secret.
    # It starts with the relay, not after it (no depends_on: that would wait for the startup probe), so a
    # replica still catching up is scraped: msr_relay_replication_ready 0 and its backlog (runbook 5.14).
    containers {
      name  = "metrics"
      image = var.gmp_sidecar_image
      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }
      volume_mounts {
        name       = "gmp-config"
        mount_path = "/etc/rungmp"
      }
    }

    volumes {
      name = "store"
      empty_dir {
        medium     = "MEMORY"
        size_limit = "${var.relay_store_mib}Mi"
      }
    }

    volumes {
      name = "gmp-config"
      secret {
        secret = google_secret_manager_secret.all["relay_gmp_config"].secret_id
        items {
          version = "latest"
          path    = "config.yaml"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].containers[0].image, client, client_version]
    precondition {
      condition     = var.relay_store_mib + 768 <= var.relay_memory_mib
      error_message = "relay_store_mib must leave at least 768 MiB of relay_memory_mib to the relay process: raise relay_memory_mib with it."
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.relay_reads, google_secret_manager_secret_version.generated, google_secret_manager_secret_version.gmp_config]
}

# The mailbox API: stateless, scaled on its own; PostgreSQL through Cloud Run's Cloud SQL connection
# (a unix socket under /cloudsql, no public database address).
resource "google_cloud_run_v2_service" "mailbox_api" {
  name                 = "msr-mailbox-api"
  location             = var.region
  ingress              = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  invoker_iam_disabled = true
  deletion_protection  = var.deletion_protection

  template {
    service_account = google_service_account.mailbox_api.email
    timeout         = "60s"

    scaling {
      min_instance_count = var.mailbox_min_instances
      max_instance_count = var.mailbox_max_instances
    }

    volumes {
      name = "cloudsql"
      cloud_sql_instance {
        instances = [google_sql_database_instance.mailbox.connection_name]
      }
    }

    containers {
      name  = "mailbox-api"
      image = var.mailbox_image
      ports {
        container_port = 8081
      }
      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }
      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      # NIP-98 `u` tags are this base URL plus /api/v1/… as the client called it.
      env {
        name  = "PUBLIC_URL"
        value = local.api_public_url
      }
      env {
        name  = "TRUSTED_PROXIES"
        value = "2"
      }
      env {
        name = "DATABASE_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.all["mailbox_database_url"].secret_id
            version = "latest"
          }
        }
      }
      env {
        name = "ADMIN_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.all["mailbox_admin_token"].secret_id
            version = "latest"
          }
        }
      }
      env {
        name = "METRICS_AUTH"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.all["mailbox_metrics_key"].secret_id
            version = "latest"
          }
        }
      }
      # Hints arrive by Pub/Sub push with an OIDC token of msr-hints-push; the app verifies its
      # signature, audience and issuer (the invoker IAM check is off, see above).
      env {
        name  = "HINTS_PUSH_SERVICE_ACCOUNT"
        value = google_service_account.hints_push.email
      }
      env {
        name  = "HINTS_PUSH_AUDIENCE"
        value = local.push_audience
      }
      env {
        name  = "OTEL_TRACES_EXPORTER"
        value = "gcp"
      }
      env {
        name  = "OTEL_TRACES_SAMPLER"
        value = "parentbased_traceidratio"
      }
      env {
        name  = "OTEL_TRACES_SAMPLER_ARG"
        value = "0.1"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project_id
      }

      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 2
        failure_threshold = 30
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }

    # Managed Service for Prometheus: scrapes /metrics over the instance's loopback and writes the
    # samples to Cloud Monitoring (monitoring.tf); its configuration, with the metrics key, is a secret.
    containers {
      name       = "metrics"
      image      = var.gmp_sidecar_image
      depends_on = ["mailbox-api"]
      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }
      volume_mounts {
        name       = "gmp-config"
        mount_path = "/etc/rungmp"
      }
    }

    volumes {
      name = "gmp-config"
      secret {
        secret = google_secret_manager_secret.all["mailbox_gmp_config"].secret_id
        items {
          version = "latest"
          path    = "config.yaml"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].containers[0].image, client, client_version]
  }

  depends_on = [
    google_secret_manager_secret_iam_member.mailbox_reads,
    google_secret_manager_secret_version.mailbox_database_url,
    google_secret_manager_secret_version.generated,
    google_secret_manager_secret_version.gmp_config,
  ]
}
